#!/usr/bin/env bash
# helper F (branch fp8c): parallel kernel precompile, bench fp16/int8/fp8 bs1,8, KV fp16/int8/fp8 at
# TinyLlama's longest context (2k) bs64, cuda-check of the fp8 / 8-bit-KV cases. One tar in $OUT.
set -uo pipefail
C=.carry/fp8c; B=$C/trtforge; O=${OUT:-/tmp/out}; R=$O/fp8c; mkdir -p $R
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; cat $C/commit.txt; } > $R/env.txt 2>&1; cat $R/env.txt
echo "== precompile (parallel threads)"; TRTFORGE_CHECKS=fp8kv TRTFORGE_CUDA_PRECOMPILE=sm_90 timeout 90 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $R/precompile.log 2>&1; echo rc=$?; cut -c1-160 $R/precompile.log; t
echo "== bench fp16,int8,fp8 bs1,8"; timeout 60 $B bench --model preset:tinyllama-1.1b --precisions fp16,int8,fp8 --batch-sizes 1,8 --input-lens 512 --output-len 128 --json $R/bench.json > $R/bench.log 2>&1; echo rc=$?; grep -E "^\|" $R/bench.log; t
echo "== KV bench bs64 ctx 2k"; timeout 45 $B bench --model preset:tinyllama-1.1b --precisions fp16 --kv-cache fp16,int8,fp8 --batch-sizes 64 --input-lens 1984 --output-len 48 --runs 1 --json $R/kv.json > $R/kv.log 2>&1; echo rc=$?; grep -E "^\|" $R/kv.log; t
echo "== cuda-check fp8kv"; TRTFORGE_CHECKS=fp8kv timeout 65 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $R/check.log 2>&1; echo rc=$?; grep -E "PASS|FAIL|passed|error" $R/check.log | cut -c1-200; t
tar czf $O/fp8c.tgz -C $O fp8c; rm -rf $R
