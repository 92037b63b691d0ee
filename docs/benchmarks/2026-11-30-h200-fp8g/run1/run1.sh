#!/usr/bin/env bash
# helper F (branch fp8g, issue #15), one call: FP8 GEMM self-test, bench fp16 / fp8 (FP8 GEMM off)
# and fp8 with TRTFORGE_FP8_GEMM=1 (GEMM log), then the fp8kv checks (static --tinyllama with the
# FP8 GEMM on; paged with it off and on). Results: $OUT/F.tgz.
set -uo pipefail
C=.carry/F; B=$C/trtforge; O=/tmp/F; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/run1.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/F.tgz -C /tmp F; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
BENCH="bench --model preset:tinyllama-1.1b --batch-sizes 1,8,64 --input-lens 512 --output-len 128"
echo "== bench fp16,fp8 (FP8 GEMM off)"
TRTFORGE_FP8_GEMM=0 timeout 70 $B $BENCH --precisions fp16,fp8 --json $O/bench_off.json > $O/bench_off.log 2>&1; echo rc=$?; grep -E "^\|" $O/bench_off.log | tail -8; t; fin
echo "== bench fp8 (FP8 GEMM on)"
TRTFORGE_FP8_GEMM=1 TRTFORGE_GEMM_LOG=1 timeout 40 $B $BENCH --precisions fp8 --json $O/bench_on.json > $O/bench_on.log 2>&1; echo rc=$?; grep -E "^\||warning|note" $O/bench_on.log | tail -8; t; fin
echo "== checks (fp8kv --tinyllama, FP8 GEMM on + self-test; its paged part: tiny32) || (--paged, FP8 GEMM off)"
( TRTFORGE_FP8_GEMM=1 TRTFORGE_GEMM_SELFTEST=1 TRTFORGE_CHECKS=fp8kv timeout 85 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_static_on.log 2>&1; echo "static rc=$?" >> $O/rc.txt ) &
P1=$!
( TRTFORGE_FP8_GEMM=0 TRTFORGE_CHECKS=fp8kv timeout 60 $B cuda-check --tiny tests/fixtures/tiny_llama --paged > $O/check_paged_off.log 2>&1; echo "paged off rc=$?" >> $O/rc.txt ) &
P2=$!
wait $P1 $P2; cat $O/rc.txt; t
for f in check_static_on check_paged_off; do echo "-- $f"; grep -E "^(PASS|FAIL)|passed|error" $O/$f.log | cut -c1-230; done
