#!/usr/bin/env bash
cd "$(git rev-parse --show-toplevel)"
# Fills $C/kcache for next_call.sh on a machine without a GPU (NVRTC from PyPI nvidia-cuda-nvrtc in $NVRTC).
C=${C:-.carry/next}; mkdir -p $C/kcache
export LD_LIBRARY_PATH=${NVRTC:-/tmp/nvrtc/x/nvidia/cu13/lib} TRTFORGE_CACHE_DIR=$C/kcache TRTFORGE_CUDA_PRECOMPILE=sm_90
B=target/release/trtforge
T0=$(date +%s)
TRTFORGE_CHECKS=kvrot $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama 2>&1 | tail -12
echo "checks $(( $(date +%s) - T0 )) s"
for kv in fp16 fp8 fp8_rotate; do
  $B bench --model preset:tinyllama-1.1b --precisions fp16 --kv-cache $kv --max-model-len 4096 --batch-sizes 64 --input-lens 4032 --output-len 64 --runs 1 2>&1 | tail -1
done
for kv in fp16 fp8 fp8_rotate; do
  $B bench --model preset:tinyllama-1.1b --precisions fp16 --kv-cache $kv --batch-sizes 1 --input-lens 512 --output-len 128 2>&1 | tail -1
done
echo "all $(( $(date +%s) - T0 )) s"; ls .carry/s16c/kcache | wc -l
