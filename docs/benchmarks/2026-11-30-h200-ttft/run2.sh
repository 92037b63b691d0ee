#!/usr/bin/env bash
# Helper T (branch ttft), for the next lease (not run by T: its device cap was spent by call 1):
# the session-6 prefill defaults vs the old path on one engine each, bs64 decode, and the checks
# that call 1 cut (TRTFORGE_CHECKS=prefill: long prefills, graph replay, TinyLlama-shape paged).
# ~100 s on a warm machine. One tar: $OUT/t2.tgz.
set -uo pipefail
C=.carry/T; B=$C/trtforge; O=/tmp/t2; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/run2.sh $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/t2.tgz -C /tmp t2; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
echo "== checks (defaults)"
TRTFORGE_CHECKS=prefill timeout 90 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_prefill.log 2>&1; echo rc=$?; grep -E "FAIL|passed" $O/check_prefill.log | tail -8; t
echo "== bench defaults (AB: old path = all four off, on the same engine)"
TRTFORGE_PREFILL_AB="old=,new=feyg" timeout 60 $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 1,64 --input-lens 512 --output-len 128 --json $O/new.json > $O/new.log 2>&1; echo rc=$?
grep -E "AB|^\| fp16" $O/new.log | sed -E 's/; kernels:.*//'; t
TRTFORGE_PREFILL_FA=0 TRTFORGE_PREFILL_EW=0 TRTFORGE_PREFILL_F16Y=0 TRTFORGE_PREFILL_GRAPH=0 timeout 45 $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 64 --input-lens 512 --output-len 128 --json $O/old64.json > $O/old64.log 2>&1; echo rc=$?; grep -E "^\| fp16" $O/old64.log; t
