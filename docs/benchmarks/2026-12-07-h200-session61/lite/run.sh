#!/usr/bin/env bash
# Session 61: #11 / #15's table beside the peer when the device budget left cannot hold session 60's whole
# `next/run.sh` (≈ 460 s on an H100): the peer first (so the rows always have it), then the rows of `table` without
# its paged checks (run in session 60, 40 / 40 and 8 / 8 + 8 / 8) and without the 4k row. Carry s60c (`.carry/z`,
# recipe in docs/benchmarks/2026-12-06-h200-session60/next/run.sh). `run` with carry [".carry/z"].
DL=${DL:-400}
NAME=${NAME:-s60c}
. scripts/gpu_bench_lib.sh
peer torch_peer --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 8 64 --input-lens 512 --output-len 128 \
  --runs 2 --warmup 1 --eager-prefill
for p in fp16 int4 int8 fp8; do bn ${p}_1 $p 1 X=1; done
(TL=("${TL[@]/preset:tinyllama-1.1b/preset:smollm2-135m}"); bn smol_1 fp16 1 X=1)
for p in fp16 int4 int8 fp8; do bn ${p}_64 $p 64 X=1; done
bn fp8_k8_64 "fp8 --kv-cache int8" 64 X=1
for p in fp16 int4 int8; do [ $(left) -gt 30 ] && bn ${p}_8 $p 8 X=1; done
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
