#!/usr/bin/env bash
# Prepared in session 16 (not run: no device was lent after kv_rot was built) for the next lease: the rotated 8-bit KV cache on the CUDA engine (kv_rot): TRTFORGE_CHECKS=kvrot (tiny32 fp8 /
# int8, TinyLlama fp8, paged tiny32 fp8; then again with the K means subtracted, TRTFORGE_CHECK_SMOOTH=1), then
# its cost: 4k bs64 fp16 KV / fp8 / fp8_rotate and 512 bs1 fp16 KV / fp8 / fp8_rotate, separate processes.
set -uo pipefail
C=${C:-.carry/next}; B=$C/trtforge; O=/tmp/s16c; mkdir -p $O   # $C: a stripped trtforge + its kernel cache (precompile the kvrot checks and the bench modules with TRTFORGE_CUDA_PRECOMPILE=sm_90: precompile.sh beside this file)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 PATH=/usr/local/cuda/bin:$PATH
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
date -u > $O/env.txt; nvidia-smi --query-gpu=name,clocks.max.sm --format=csv >> $O/env.txt 2>&1; cp "$0" $O/
TRTFORGE_CHECKS=kvrot timeout 150 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_kvrot.log 2>&1; echo "kvrot rc=$?"; grep -E "PASS|FAIL|passed" $O/check_kvrot.log | cut -c1-170; t
TRTFORGE_CHECK_SMOOTH=1 TRTFORGE_CHECKS=kvrot timeout 150 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_kvrot_smooth.log 2>&1; echo "kvrot smooth rc=$?"; grep -E "PASS|FAIL|passed" $O/check_kvrot_smooth.log | cut -c1-170; t
export TRTFORGE_KV_ROT=1
for kv in fp16 fp8 fp8_rotate; do
  timeout 100 $B bench --model preset:tinyllama-1.1b --precisions fp16 --kv-cache $kv --max-model-len 4096 --batch-sizes 64 --input-lens 4032 --output-len 64 --runs 1 --json $O/k4_$kv.json > $O/k4_$kv.log 2>&1; echo "4k $kv rc=$?"; grep -E "^\| fp|rror" $O/k4_$kv.log; t
done
for kv in fp16 fp8 fp8_rotate; do
  timeout 60 $B bench --model preset:tinyllama-1.1b --precisions fp16 --kv-cache $kv --batch-sizes 1 --input-lens 512 --output-len 128 --json $O/b1_$kv.json > $O/b1_$kv.log 2>&1; echo "bs1 $kv rc=$?"; grep -E "^\| fp|rror" $O/b1_$kv.log; t
done
tar czf ${OUT:-/tmp}/s16c.tgz -C /tmp s16c 2>/dev/null; true
