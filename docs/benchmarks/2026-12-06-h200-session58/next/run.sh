#!/usr/bin/env bash
# Prepared in session 58, not run (device budget): call B again with the registration fixed (≈ 500 s). TRTFORGE_ATTN_ROPE=1
# (RoPE + the KV append inside attn_decode_cx8: attn_decode_cx8r / cx8rh, no rope_append launch) — its checks against
# the CPU reference with the kernel forced at 12 rows, then A/B rows at bs64 interleaved in separate processes.
# Carry (git-ignored, rebuild if .carry/z/s58c.tgz is gone; s58c was built at c07ccd2, whose kernels compile to the
# same SASS as main's after the review's rope_rot / q-scale mends — every function of the TinyLlama f16- and int8-cache
# modules compared with nvdisasm — so either build measures the same code):
#   KV="int8" KVP="fp16 fp8" bash scripts/gpu_carry.sh s58c
# then the rope list's modules into it (untar to /tmp/pc, `gunzip -k s58c/trtforge.gz`, for E in
# "TRTFORGE_ATTN_ROPE=1" "X=1": `env $E TRTFORGE_CHECKS=rope TRTFORGE_ATTN=cx8all TRTFORGE_CACHE_DIR=/tmp/pc/s58c/K
# TRTFORGE_CUDA_PRECOMPILE=sm_90 LD_LIBRARY_PATH=/tmp/nvrtc/x/nvidia/cu13/lib /tmp/pc/s58c/trtforge cuda-check --tiny
# tests/fixtures/tiny_llama` (every check then fails with "... cached": the success), remove the unzipped binary,
# retar as .carry/z/s58c.tgz). `run` with carry [".carry/z"].
NAME=${NAME:-s58c} DL=${DL:-560} CKT=${CKT:-200} bash docs/benchmarks/2026-12-06-h200-session58/callB.sh
