#!/usr/bin/env bash
# Session 28 call 3 prep (CPU machine, repository root): the stripped release binary and the NVRTC kernel cache of
# TinyLlama fp16 (sm_90), fp8 with the FP8 GEMM (sm_90a + f8g, the new default on cc 9.0) and fp8 with
# TRTFORGE_FP8_GEMM=0 (sm_90, the old default), into .carry/s28.
set -euo pipefail
NVRTC=${NVRTC:-/tmp/nvrtc/x/nvidia/cu13/lib}; C=.carry/s28
cargo build --release; rm -rf $C; mkdir -p $C/K; cp target/release/trtforge $C/; strip $C/trtforge
{ git rev-parse HEAD; git status --short; } > $C/commit.txt
P() { env LD_LIBRARY_PATH=$NVRTC TRTFORGE_CACHE_DIR=$C/K TRTFORGE_CUDA_PRECOMPILE=sm_90 "$@" ./target/release/trtforge bench \
  --model preset:tinyllama-1.1b --precisions $PR --batch-sizes 1,8,64 --input-lens 512 --output-len 128 --isolate never 2>&1 | tail -1 || true; }
PR=fp16 P X=1 & PR=fp8 P X=1 & PR=fp8 P TRTFORGE_FP8_GEMM=0; wait
ls -la $C/K; du -sh $C
