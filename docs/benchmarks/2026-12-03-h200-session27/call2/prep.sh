#!/usr/bin/env bash
# Session 27 call 2 prep (CPU machine, repository root): main's stripped release binary and the NVRTC kernel cache of
# TinyLlama fp16 / int4 / int8 / fp8 and SmolLM2 fp16, into .carry/f2.
set -euo pipefail
NVRTC=${NVRTC:-/tmp/nvrtc/x/nvidia/cu13/lib}; C=.carry/f2
cargo build --release; rm -rf $C; mkdir -p $C/K; cp target/release/trtforge $C/; strip $C/trtforge
{ git rev-parse HEAD; git status --short; } > $C/commit.txt
P() { env LD_LIBRARY_PATH=$NVRTC TRTFORGE_CACHE_DIR=$C/K TRTFORGE_CUDA_PRECOMPILE=sm_90 ./target/release/trtforge bench \
  --model preset:$1 --precisions $2 --batch-sizes 1,8,64 --input-lens 512 --output-len 128 --isolate never 2>&1 | tail -1 || true; }
P tinyllama-1.1b fp16 & P tinyllama-1.1b int4; wait
P tinyllama-1.1b int8 & P tinyllama-1.1b fp8; wait
P smollm2-135m fp16
ls -la $C/K; du -sh $C
