#!/usr/bin/env bash
# Session 30 call 1 prep (CPU machine, repository root): binary + NVRTC kernel cache into .carry/s30a, for the engine's
# fp16 bs1 rows beside the megakernel probe (mk/mk.cu) in the same call.
set -euo pipefail
NVRTC=${NVRTC:-/tmp/nvrtc/x/nvidia/cu13/lib}; C=.carry/s30a
cargo build --release; rm -rf $C; mkdir -p $C/K; cp target/release/trtforge $C/; strip $C/trtforge
{ git rev-parse HEAD; git status --short; git diff | sha256sum; } > $C/commit.txt
P() { env LD_LIBRARY_PATH=$NVRTC TRTFORGE_CACHE_DIR=$C/K TRTFORGE_CUDA_PRECOMPILE=sm_90 "$@" ./target/release/trtforge bench \
  --model preset:$M --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never 2>&1 | tail -1 || true; }
M=tinyllama-1.1b P TRTFORGE_GUD=0 & M=tinyllama-1.1b P TRTFORGE_GUD=1 TRTFORGE_GUD_EARLY=1 & wait
ls -la $C/K; du -sh $C
