#!/usr/bin/env bash
# Session 22, for the next lease (run on the CPU machine from the repository root; ≈ 10 min on 2 cores): the release
# binary (stripped) and the kernel cache of the modules next_call.sh uses, into .carry/s23 (git-ignored via
# .git/info/exclude; pass it as the run's carry). NVRTC: pip download nvidia-cuda-nvrtc==13.0.88, unzip, NVRTC=<lib dir>.
set -euo pipefail
NVRTC=${NVRTC:-/tmp/nvrtc/x/nvidia/cu13/lib}; C=.carry/s23
grep -qx "/.carry/" .git/info/exclude 2>/dev/null || echo "/.carry/" >> .git/info/exclude
cargo build --release; mkdir -p $C/kcache; cp target/release/trtforge $C/; strip $C/trtforge; git rev-parse HEAD > $C/commit.txt
P() { local m=$1 q=$2; shift 2; env LD_LIBRARY_PATH=$NVRTC TRTFORGE_CACHE_DIR=$C/kcache TRTFORGE_CUDA_PRECOMPILE=sm_90 "$@" \
  ./target/release/trtforge bench --model preset:$m --precisions $q --batch-sizes 1 --isolate never 2>&1 | tail -1 || true; }
# two at a time (one NVRTC process per core); each job writes its own cubin
P tinyllama-1.1b int4 X=1 & P tinyllama-1.1b int4 TRTFORGE_I4_POST=1; wait
P smollm2-135m int4 X=1 & P smollm2-135m int4 TRTFORGE_I4_POST=1; wait
P tinyllama-1.1b fp16 X=1 & P smollm2-135m fp16 X=1; wait
ls -la $C/kcache; du -sh $C
