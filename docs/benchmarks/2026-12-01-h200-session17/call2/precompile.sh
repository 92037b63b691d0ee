#!/usr/bin/env bash
# Fills $C/kcache for run.sh beside it on a machine without a GPU (NVRTC from PyPI nvidia-cuda-nvrtc in $NVRTC):
# the same bench commands, each stopping once its modules are cached.
cd "$(git rev-parse --show-toplevel)"
C=${C:-.carry/s17b}; mkdir -p $C/kcache
export LD_LIBRARY_PATH=${NVRTC:-/tmp/nvrtc/x/nvidia/cu13/lib} TRTFORGE_CACHE_DIR=$C/kcache TRTFORGE_CUDA_PRECOMPILE=sm_90
B=target/release/trtforge
bn() { local m=$1; shift; $B bench --model preset:$m --input-lens 512 --output-len 128 "$@" 2>&1 | tail -1; }
bn tinyllama-1.1b --precisions fp16 --batch-sizes 1,8,16,32,64
for p in int4 int8 fp8; do bn tinyllama-1.1b --precisions $p --batch-sizes 1,8,64; done
bn smollm2-135m --precisions fp16 --batch-sizes 1,8
bn tinyllama-1.1b --precisions fp16 --kv-cache fp8 --batch-sizes 64
bn tinyllama-1.1b --precisions fp16 --kv-cache fp8_plain --batch-sizes 64
ls $C/kcache | wc -l
