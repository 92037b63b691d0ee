#!/usr/bin/env bash
# Prepared in session 60 for the next lease (≈ 460 s on an H100, less on an H200): #11 / #15's whole table beside the
# peer on main's defaults (`table` of scripts/gpu_bench_lib.sh: the tiny fixture's paged checks, bs1 at every
# precision and the SmolLM2 shape, bs8, bs64 with fp8 + int8 KV, the peer), then #15's 4k row (call E's script).
# The goals are stated on the H200 and its last whole table is session 46's: on an H200 this is the table to record.
# Carry s60c (`.carry/z`, git-ignored): `KV="int8" KVP="fp8" bash scripts/gpu_carry.sh s60c` at 0b83282, its binary
# then replaced by 61612b5's (stripped, gzipped; the kernel sources did not change, every module below still answered
# "cached (0.0 s)"), plus — untar to /tmp/pc, `gunzip -k s60c/trtforge.gz`, each with
# TRTFORGE_CACHE_DIR=/tmp/pc/s60c/K TRTFORGE_CUDA_PRECOMPILE=sm_90 LD_LIBRARY_PATH=/tmp/nvrtc/x/nvidia/cu13/lib, then
# remove the unzipped binary and retar — the modules of `trtforge bench --isolate never --model preset:smollm2-135m
# --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128`, of `TRTFORGE_CHECKS=prefill|tlkv8 trtforge
# cuda-check --tiny tests/fixtures/tiny_llama --tinyllama --paged` (serve's engine: the same modules) and of call E's
# four 4k rows ("... cached" errors are the success). `run` with carry [".carry/z"].
DL=${DL:-570}
NAME=${NAME:-s60c}
. scripts/gpu_bench_lib.sh
table
DL=$(left) NAME=$NAME bash docs/benchmarks/2026-12-06-h200-session60/callE/run.sh
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
