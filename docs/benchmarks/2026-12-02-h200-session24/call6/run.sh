#!/usr/bin/env bash
# Session 24 call 6 (carry .carry/s32: the committed binary, 17d8c6e's kernels, and the udown16 check module).
# Call 1's `cl` variant at one row (the cluster attention merging its splits itself, o plain; opt-in) gave other greedy
# tokens than the default for the TinyLlama fp16 engine. Is that a wrong result or a near-tie? `TRTFORGE_CHECKS=udown16`
# (TinyLlama fp16, 1 and 3 sequences, logits vs the CPU reference) with the default and with that variant forced at
# engine start (TRTFORGE_BS1).
set -uo pipefail
C=.carry/s32; B=$C/trtforge; D=docs/benchmarks/2026-12-02-h200-session24/call6; O=/tmp/s32a; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $D/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s32a.tgz -C /tmp s32a; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
ck() { local n=$1; shift; env "$@" TRTFORGE_CHECKS=udown16 timeout 110 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_$n.log 2>&1
  echo "check $n rc=$?"; grep -E "PASS|FAIL|passed" $O/check_$n.log | cut -c1-170; t; }
ck cl_bs1 TRTFORGE_BS1=off+trig+mtrigw+r2+mr2+mcg+sp+msp+cl
ck default
