#!/usr/bin/env bash
# helper K: tcg (batched tensor-core GEMM) + attn_prefill_tc A/B, one lease.
set -uo pipefail
C=.carry/kern; B=$C/trtforge; O=${OUT:-/tmp/out}; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; $B --version; } > $O/env.txt 2>&1; cat $O/env.txt
M="--model preset:tinyllama-1.1b --input-lens 512 --output-len 128"
echo "== cuda-check (new: tcg + attn_prefill_tc)"; timeout 170 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check.log 2>&1; grep -E "FAIL|passed" $O/check.log; t
if grep -q FAIL $O/check.log; then
  echo "== isolate: TRTFORGE_TCG=0"; TRTFORGE_TCG=0 timeout 60 $B cuda-check --tiny tests/fixtures/tiny_llama 2>&1 | grep -E "FAIL|passed"
  echo "== isolate: PREFILL_ATTN=cublas"; TRTFORGE_PREFILL_ATTN=cublas timeout 60 $B cuda-check --tiny tests/fixtures/tiny_llama 2>&1 | grep -E "FAIL|passed"; t
fi
echo "== bench new"; timeout 150 $B bench $M --precisions fp16,int8,int4 --batch-sizes 1,8,64 --json $O/new.json > $O/new.log 2>&1; grep -E "bs64 eager|^\|" $O/new.log; t
echo "== bench old (TRTFORGE_TCG=0 TRTFORGE_PREFILL_ATTN=cublas)"; TRTFORGE_TCG=0 TRTFORGE_PREFILL_ATTN=cublas timeout 70 $B bench $M --precisions fp16 --batch-sizes 1,64 --json $O/old.json > $O/old.log 2>&1; grep -E "bs64 eager|^\|" $O/old.log; t
echo "== bench new, TRTFORGE_TCG_KSMIN=256"; TRTFORGE_TCG_KSMIN=256 timeout 60 $B bench $M --precisions fp16,int8 --batch-sizes 64 --json $O/ks256.json > $O/ks256.log 2>&1; grep -E "bs64 eager|^\|" $O/ks256.log; t
