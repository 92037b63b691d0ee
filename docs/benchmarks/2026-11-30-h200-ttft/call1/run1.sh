#!/usr/bin/env bash
# Helper T (branch ttft), call 1: TTFT(512) fp16 bs1 — per-kernel prefill profile (events around each
# launch, no sync between kernels) of the default path and of the session-6 switches, A/B on one
# engine (TRTFORGE_PREFILL_AB), bs64 with the switches on vs off, then the attention checks (+ long
# prefills, graph replay) with every switch on. One tar: $OUT/t1.tgz.
set -uo pipefail
C=.carry/T; B=$C/trtforge; O=/tmp/t1; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp .carry/final5/kcache/* $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/run1.sh $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/t1.tgz -C /tmp t1; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
AB="base=,fa=f,ew=e,f16y=y,fa_ew=fe,fa_ew_y=fey,all4=feyg,fa_ew_g=feg,base2="
echo "== bs1 A/B on one engine (defaults off)"
TRTFORGE_PREFILL_AB=$AB timeout 60 $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --runs 9 --json $O/ab.json > $O/ab.log 2>&1; echo rc=$?
grep -E "TTFT|kernels:" $O/ab.log | sed -E 's/; kernels:.*//' ; t
grep -E "AB (base|fa_ew_y|all4) " $O/ab.log | sed -E 's/.*AB //' | cut -c1-900; t
echo "== bs64 off / on (e+y: epilogues of the GEMM path at bs64 too)"
for v in off on; do
  F=0; [ $v = on ] && F=1
  TRTFORGE_PREFILL_FA=$F TRTFORGE_PREFILL_EW=$F TRTFORGE_PREFILL_F16Y=$F timeout 40 $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 64 --input-lens 512 --output-len 128 --json $O/bs64_$v.json > $O/bs64_$v.log 2>&1; echo "$v rc=$?"; grep -E "bs64" $O/bs64_$v.log | tail -2; t
done
echo "== checks (FA EW F16Y GRAPH on)"
TRTFORGE_PREFILL_FA=1 TRTFORGE_PREFILL_EW=1 TRTFORGE_PREFILL_F16Y=1 TRTFORGE_PREFILL_GRAPH=1 TRTFORGE_CHECKS=attn timeout ${CHK_T:-120} $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_attn.log 2>&1; echo rc=$?; grep -E "FAIL|passed|long|graph" $O/check_attn.log | tail -10; t
