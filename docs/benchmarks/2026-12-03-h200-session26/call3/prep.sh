#!/usr/bin/env bash
# Session 26 call 3 prep (CPU machine, repository root): main's stripped release binary and the NVRTC kernel cache of
# TinyLlama fp16 / int4 / int8 (bench) and the udown16 / udown4 checks, into .carry/u3.
set -euo pipefail
NVRTC=${NVRTC:-/tmp/nvrtc/x/nvidia/cu13/lib}; C=.carry/u3
cargo build --release; rm -rf $C; mkdir -p $C/K; cp target/release/trtforge $C/; strip $C/trtforge
{ git rev-parse HEAD; git status --short; } > $C/commit.txt
P() { local m=$1 q=$2; shift 2; env LD_LIBRARY_PATH=$NVRTC TRTFORGE_CACHE_DIR=$C/K TRTFORGE_CUDA_PRECOMPILE=sm_90 "$@" \
  ./target/release/trtforge bench --model preset:$m --precisions $q --batch-sizes 1 --isolate never 2>&1 | tail -1 || true; }
Q() { env LD_LIBRARY_PATH=$NVRTC TRTFORGE_CACHE_DIR=$C/K TRTFORGE_CUDA_PRECOMPILE=sm_90 TRTFORGE_CHECKS=$1 \
  ./target/release/trtforge cuda-check --tiny tests/fixtures/tiny_llama --tinyllama 2>&1 | tail -1 || true; }
P tinyllama-1.1b fp16 X=1 & P tinyllama-1.1b int4 X=1; wait
P tinyllama-1.1b int8 X=1 & Q udown16; wait
Q udown4
ls -la $C/K; du -sh $C
