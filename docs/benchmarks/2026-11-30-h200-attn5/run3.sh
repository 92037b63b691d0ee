#!/usr/bin/env bash
# helper K, session 5, branch attn5 (NOT RUN: K's device cap was spent): the opt-in 8-warp
# attn_decode_cl8 — correctness with it on every decode, then bs64 A/B against the default (4-warp
# attn_decode_cl at bs64) and the old kernel, in one call (~90 s warm). Carry .carry/K/{kc2,trtforge,run3.sh,commit.txt}.
set -uo pipefail
C=.carry/K; B=$C/trtforge; O=/tmp/k5c; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kc2/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/run3.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/k5c.tgz -C /tmp k5c; }
trap fin EXIT
TRTFORGE_ATTN=cl8all TRTFORGE_CHECKS=attn timeout 130 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_cl8.log 2>&1; echo rc=$?
grep -E "FAIL|passed" $O/check_cl8.log | tail -6; t
for v in cl8 default tc1; do
  TRTFORGE_ATTN=$v timeout 40 $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 64 --input-lens 512 --output-len 128 --json $O/bs64_$v.json > $O/bs64_$v.log 2>&1; echo "$v rc=$?"
  grep -E "^\| fp16" $O/bs64_$v.log; t
done
