#!/usr/bin/env bash
# helper A (branch bs1, issue #11), call 1: in-graph timeline of one bs1 decode step per precision
# (TRTFORGE_TIMELINE=1) and in-process A/B of the bs1 switches (TRTFORGE_BS1_AB). One tar: $OUT/a1.tgz
set -uo pipefail
C=.carry/A; B=$C/trtforge; O=/tmp/a1; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/run1.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/a1.tgz -C /tmp a1; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; which ncu nsys; } > $O/env.txt 2>&1; cat $O/env.txt
export TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_RAW=$O
AB=${AB:-base,trig,trigw,occ1,ns3,cl,cl+trig,trig+occ1,base}
TRTFORGE_BS1_AB=$AB timeout 170 $B bench --model preset:tinyllama-1.1b --precisions fp16,int8,int4 --batch-sizes 1 --input-lens 512 --output-len 128 --json $O/tl.json > $O/tl.log 2>&1; echo rc=$?; t
TRTFORGE_BS1_AB=$AB timeout 40 $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --json $O/sm.json > $O/sm.log 2>&1; echo rc=$?; t
TRTFORGE_PDL=0 timeout 30 $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 > $O/sm_pdl0.log 2>&1; echo rc=$?; t
grep -hE "variant|decode [0-9]+ tok/s|eager decode" $O/tl.log $O/sm.log $O/sm_pdl0.log
grep -hE "(default|base) rep0 timeline" $O/tl.log $O/sm.log $O/sm_pdl0.log | head -40
