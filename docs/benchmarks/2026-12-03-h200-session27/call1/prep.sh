#!/usr/bin/env bash
# Session 27 call 1 prep (CPU machine, repository root): the working tree's stripped release binary (TC_DYN opt-in) and
# the NVRTC kernel cache of TinyLlama fp16 / int8 / int4 with and without TRTFORGE_TC_DYN=1 (int4 also with
# TRTFORGE_TC_PF2=0, with and without TC_DYN) and of the `udown` checks with TC_DYN=1 TC_PF2=0, into .carry/d1.
set -euo pipefail
NVRTC=${NVRTC:-/tmp/nvrtc/x/nvidia/cu13/lib}; C=.carry/d1
cargo build --release; rm -rf $C; mkdir -p $C/K; cp target/release/trtforge $C/; strip $C/trtforge
{ git rev-parse HEAD; git status --short; } > $C/commit.txt
P() { local q=$1; shift; env LD_LIBRARY_PATH=$NVRTC TRTFORGE_CACHE_DIR=$C/K TRTFORGE_CUDA_PRECOMPILE=sm_90 "$@" \
  ./target/release/trtforge bench --model preset:tinyllama-1.1b --precisions $q --batch-sizes 1 --isolate never 2>&1 | tail -1 || true; }
Q() { env LD_LIBRARY_PATH=$NVRTC TRTFORGE_CACHE_DIR=$C/K TRTFORGE_CUDA_PRECOMPILE=sm_90 TRTFORGE_CHECKS=$1 TRTFORGE_TC_DYN=1 \
  TRTFORGE_TC_PF2=0 ./target/release/trtforge cuda-check --tiny tests/fixtures/tiny_llama --tinyllama 2>&1 | tail -1 || true; }
P fp16 X=1 & P fp16 TRTFORGE_TC_DYN=1; wait
P int8 X=1 & P int8 TRTFORGE_TC_DYN=1; wait
P int4 X=1 & P int4 TRTFORGE_TC_PF2=0; wait
P int4 TRTFORGE_TC_PF2=0 TRTFORGE_TC_DYN=1 & Q udown; wait
ls -la $C/K; du -sh $C
