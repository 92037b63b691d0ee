#!/usr/bin/env bash
# Helper G (session 6, branch gemm6), call 1: tcg3 (TRTFORGE_TCG=3) vs cuBLAS (default) at bs16/64,
# eager per-kind profile + graph decode, then the tcg checks. One tar: $OUT/g1.tgz.
set -uo pipefail
C=.carry/G; B=$C/trtforge; O=/tmp/g1; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/run*.sh $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/g1.tgz -C /tmp g1; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
P=${PREC:-fp16,int8}
for v in off 3; do
  if [ $v = off ]; then unset TRTFORGE_TCG; else export TRTFORGE_TCG=$v; fi
  TRTFORGE_TCG3_LOG=1 timeout 120 $B bench --model preset:tinyllama-1.1b --precisions $P --batch-sizes ${BS:-16,64} --input-lens 512 --output-len 128 --json $O/bench_$v.json > $O/bench_$v.log 2>&1; echo "bench $v rc=$?"
  grep -E "eager decode|tcg3 " $O/bench_$v.log | cut -c1-400; grep -E "^\|" $O/bench_$v.log | tail -6; t
done
unset TRTFORGE_TCG
echo "== checks"
TRTFORGE_TCG=3 TRTFORGE_TCG_KSMAX=64 TRTFORGE_CHECKS=tcg timeout 40 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_ks64.log 2>&1; echo rc=$?; grep -E "PASS|FAIL|passed|error" $O/check_ks64.log | cut -c1-300 | tail -8; t
TRTFORGE_TCG=3 TRTFORGE_CHECKS=tcg timeout ${CHK_T:-120} $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_tcg3.log 2>&1; echo rc=$?; grep -E "PASS|FAIL|passed|error" $O/check_tcg3.log | cut -c1-300 | tail -10; t
if [ -n "${EXTRA:-}" ]; then echo "== extra"; eval "$EXTRA"; t; fi
