#!/usr/bin/env bash
# persist (issue #11), GPU call 1: cuda-check with TRTFORGE_PERSIST=1, bench A/B (TinyLlama fp16/int8/int4
# bs1, SmolLM2 fp16 bs1), per-step profile, cuda-check default. Results: $OUT/res.tgz (+ summary.txt).
set -uo pipefail
C=.carry/persist; B=$C/trtforge; O=${OUT:-/tmp/out}; R=/tmp/r; mkdir -p $O $R
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))" | tee -a $R/summary.txt; }
pack() { cp $R/summary.txt $O/summary.txt 2>/dev/null; tar czf $O/res.tgz -C $R . ; }
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $R/env.txt 2>&1
echo "== cuda-check PERSIST=1" | tee -a $R/summary.txt
TRTFORGE_PERSIST=1 timeout 140 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $R/check_persist.log 2>&1; echo rc=$? | tee -a $R/summary.txt
grep -E "FAIL|passed|error" $R/check_persist.log | tail -12 | tee -a $R/summary.txt; t; pack
BENCH="bench --model preset:tinyllama-1.1b --precisions fp16,int8,int4 --batch-sizes 1 --input-lens 512 --output-len 128"
for P in 0 1; do
  echo "== bench tinyllama PERSIST=$P" | tee -a $R/summary.txt
  TRTFORGE_PERSIST=$P timeout 75 $B $BENCH --json $R/tl_p$P.json > $R/tl_p$P.log 2>&1; echo rc=$? | tee -a $R/summary.txt
  grep -E "^\|" $R/tl_p$P.log | tail -5 | tee -a $R/summary.txt; t; pack
done
for P in 0 1; do
  echo "== bench smollm2 PERSIST=$P" | tee -a $R/summary.txt
  TRTFORGE_PERSIST=$P timeout 30 $B bench --model preset:smollm2-135m --precisions fp16,int4 --batch-sizes 1 --input-lens 512 --output-len 128 --json $R/sm_p$P.json > $R/sm_p$P.log 2>&1; echo rc=$? | tee -a $R/summary.txt
  grep -E "^\|" $R/sm_p$P.log | tail -4 | tee -a $R/summary.txt; t; pack
done
echo "== cuda-check default" | tee -a $R/summary.txt
timeout 110 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $R/check_default.log 2>&1; echo rc=$? | tee -a $R/summary.txt
grep -E "FAIL|passed|error" $R/check_default.log | tail -12 | tee -a $R/summary.txt; t; pack
