#!/usr/bin/env bash
# Session 26 call 1 prep (CPU machine, repository root): the stripped release binary and the NVRTC kernel cache of the
# modules run.sh uses, into .carry/u1 (git-ignored via .git/info/exclude; pass it as the run's carry).
set -euo pipefail
NVRTC=${NVRTC:-/tmp/nvrtc/x/nvidia/cu13/lib}; C=.carry/u1
grep -qx "/.carry/" .git/info/exclude 2>/dev/null || echo "/.carry/" >> .git/info/exclude
cargo build --release; rm -rf $C; mkdir -p $C/K; cp target/release/trtforge $C/; strip $C/trtforge
{ git rev-parse HEAD; git status --short; } > $C/commit.txt
P() { local m=$1 q=$2; shift 2; env LD_LIBRARY_PATH=$NVRTC TRTFORGE_CACHE_DIR=$C/K TRTFORGE_CUDA_PRECOMPILE=sm_90 "$@" \
  ./target/release/trtforge bench --model preset:$m --precisions $q --batch-sizes 1 --isolate never 2>&1 | tail -1 || true; }
T=(TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_TILES=1)
P tinyllama-1.1b fp16 X=1 & P smollm2-135m fp16 X=1; wait
P tinyllama-1.1b fp16 "${T[@]}" & env LD_LIBRARY_PATH=$NVRTC TRTFORGE_CACHE_DIR=$C/K TRTFORGE_CUDA_PRECOMPILE=sm_90 \
  TRTFORGE_CHECKS=ao ./target/release/trtforge cuda-check --tiny tests/fixtures/tiny_llama --tinyllama 2>&1 | tail -2 || true; wait
ls -la $C/K; du -sh $C
