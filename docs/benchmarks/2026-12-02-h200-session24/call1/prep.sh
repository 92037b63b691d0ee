#!/usr/bin/env bash
# Session 24, call 1 (run on the CPU machine from the repository root; ≈ 6 min on 2 cores after the build):
# the release binary (stripped) and the kernel cache of the modules next_call.sh uses, into .carry/s27 (git-ignored via
# .git/info/exclude; pass it as the run's carry). NVRTC: pip download nvidia-cuda-nvrtc==13.0.88, unzip, NVRTC=<lib dir>.
set -euo pipefail
NVRTC=${NVRTC:-/tmp/nvrtc/x/nvidia/cu13/lib}; C=.carry/s28
grep -qx "/.carry/" .git/info/exclude 2>/dev/null || echo "/.carry/" >> .git/info/exclude
cargo build --release; mkdir -p $C/kcache; cp target/release/trtforge $C/; strip $C/trtforge; git rev-parse HEAD > $C/commit.txt
P() { local m=$1 q=$2; shift 2; env LD_LIBRARY_PATH=$NVRTC TRTFORGE_CACHE_DIR=$C/kcache TRTFORGE_CUDA_PRECOMPILE=sm_90 "$@" \
  ./target/release/trtforge bench --model preset:$m --precisions $q --batch-sizes 1 --isolate never 2>&1 | tail -1 || true; }
T=(TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_TILES=1)
# two at a time (one NVRTC process per core); each job writes its own cubin
P tinyllama-1.1b int4 "${T[@]}" & P tinyllama-1.1b fp16 "${T[@]}"; wait
P tinyllama-1.1b int8 "${T[@]}" & P tinyllama-1.1b int4 X=1; wait
P tinyllama-1.1b fp16 X=1 & P tinyllama-1.1b int8 X=1; wait
# the paged checks' 14 modules (each engine stops after compiling and reports "kernels cached" as a failed check: ≈ 6 min)
env LD_LIBRARY_PATH=$NVRTC TRTFORGE_CACHE_DIR=$C/kcache TRTFORGE_CUDA_PRECOMPILE=sm_90 ./target/release/trtforge cuda-check \
  --tiny tests/fixtures/tiny_llama --tinyllama --paged 2>&1 | tail -2 || true
ls -la $C/kcache; du -sh $C
