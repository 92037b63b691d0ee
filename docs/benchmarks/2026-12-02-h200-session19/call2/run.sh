#!/usr/bin/env bash
# Session 19, call 2: `tcs` (one-row / `mtcs` 2-8-row tensor-core GEMVs whose weight tiles come into a ring of
# shared-memory slots by bulk copies, all of a block's first slots issued before griddepcontrol.wait).
# (1) correctness: TRTFORGE_CHECKS=bs1q with tcs + mtcs on (tiny fixture int8 / fp8 / fp16, preset:tiny int4 g32, bs1
#     and bs8 logits and greedy vs the CPU reference);
# (2) speed, same process per precision: TRTFORGE_BS1_AB=default,default+tcs+mtcs,default,default+tcs+mtcs at bs 1 and 8
#     (each variant's greedy tokens compared with the first: tcs keeps tc's summation order, so they must be equal).
set -uo pipefail
C=.carry/s19a; B=$C/trtforge; D=docs/benchmarks/2026-12-02-h200-session19; O=/tmp/s19c2; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $D/call2/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s19c2.tgz -C /tmp s19c2; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
TRTFORGE_BS1=default+tcs+mtcs TRTFORGE_CHECKS=bs1q timeout 120 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/checks.log 2>&1; echo "checks rc=$?"
grep -E "FAIL|rror|passed|failed" $O/checks.log | tail -6; t
ab() { local n=$1 m=$2; shift 2
  TRTFORGE_BS1_AB=default,default+tcs+mtcs,default,default+tcs+mtcs timeout 150 $B bench --model preset:$m --input-lens 512 --output-len 128 --isolate never --json $O/$n.json "$@" > $O/$n.log 2>&1
  echo "$n rc=$?"; grep -E "variant|rror" $O/$n.log | sed 's/^.*\(bs[0-9]* variant\)/\1/' | cut -c1-150; t; }
for p in int4 int8 fp8 fp16; do ab ab_$p tinyllama-1.1b --precisions $p --batch-sizes 1,8; done
ab ab_smol smollm2-135m --precisions fp16 --batch-sizes 1,8
