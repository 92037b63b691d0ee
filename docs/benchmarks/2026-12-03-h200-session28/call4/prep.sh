#!/usr/bin/env bash
# Session 28 call 4 prep (CPU machine, repository root): binary + NVRTC kernel cache into .carry/s28b for every
# engine call4/run.sh builds (TinyLlama fp16; fp8 with TRTFORGE_FP8_GEMM=0 / =1 / =1 TRTFORGE_F8G=0), at prompt
# 512 + 128 and 64 + 8.
set -euo pipefail
NVRTC=${NVRTC:-/tmp/nvrtc/x/nvidia/cu13/lib}; C=.carry/s28b
cargo build --release; rm -rf $C; mkdir -p $C/K; cp target/release/trtforge $C/; strip $C/trtforge
{ git rev-parse HEAD; git status --short; } > $C/commit.txt
P() { env LD_LIBRARY_PATH=$NVRTC TRTFORGE_CACHE_DIR=$C/K TRTFORGE_CUDA_PRECOMPILE=sm_90 "$@" ./target/release/trtforge bench \
  --model preset:tinyllama-1.1b --precisions $PR --batch-sizes $BS --input-lens $IL --output-len $OL --isolate never 2>&1 | tail -1 || true; }
export BS=1,16,32,64 IL=512 OL=128
PR=fp16 P X=1 & PR=fp8 P TRTFORGE_FP8_GEMM=0 & wait
PR=fp8 P TRTFORGE_FP8_GEMM=1 & PR=fp8 P TRTFORGE_FP8_GEMM=1 TRTFORGE_F8G=0 & wait
export BS=1 IL=64 OL=8
PR=fp16 P X=1 & PR=fp8 P TRTFORGE_FP8_GEMM=1 & wait
PR=fp8 P TRTFORGE_FP8_GEMM=1 TRTFORGE_F8G=0
ls -la $C/K; du -sh $C
