#!/usr/bin/env bash
# Session 21, call 3 (the last ≈ 400 device s): tc_core with one loadat / step / publish / reduce serving both the
# default loop and the PF2 loop (session 20's tc_core_dedup.patch; ptxas: same registers, different SASS) against
# the code before (171a6e9, `trtforge_old`), alternating processes, and its checks vs the CPU reference.
# Order (the limit may cut the tail): int4 old / new (bs 1, 8), TRTFORGE_CHECKS=udown4 on new, fp16 new / old,
# int4 old / new again, then udown16 on new.
set -uo pipefail
C=.carry/s21c; D=docs/benchmarks/2026-12-02-h200-session21; O=/tmp/s21c3; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }; LIM=${LIM:-300}; left() { echo $(( LIM - 5 - $(date +%s) + T0 )); }
fin() { cp $D/call3/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s21c3.tgz -C /tmp s21c3; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
nb() { local n=$1 b=$2; shift 2; [ $(left) -lt 25 ] && { echo "skip $n"; return; }
  timeout 40 $C/$b bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --isolate never --json $O/$n.json "$@" > $O/$n.log 2>&1
  echo "$n rc=$?"; grep -E "^\| (fp|int)|rror" $O/$n.log | cut -c1-120; t; }
ck() { local s=$1 CT=$(left); [ $CT -lt 40 ] && { echo "skip check $s"; return; }
  TRTFORGE_CHECKS=$s timeout $CT $C/trtforge cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_$s.log 2>&1; echo "check $s rc=$?"; grep -E "PASS|FAIL|passed" $O/check_$s.log | cut -c1-160; t; }
nb int4_old_a trtforge_old --precisions int4 --batch-sizes 1,8
nb int4_new_a trtforge --precisions int4 --batch-sizes 1,8
ck udown4
nb fp16_new_a trtforge --precisions fp16 --batch-sizes 1,8
nb fp16_old_a trtforge_old --precisions fp16 --batch-sizes 1,8
nb int4_old_b trtforge_old --precisions int4 --batch-sizes 1,8
nb int4_new_b trtforge --precisions int4 --batch-sizes 1,8
ck udown16
