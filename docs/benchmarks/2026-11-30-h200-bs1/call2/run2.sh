#!/usr/bin/env bash
# helper A (branch bs1, issue #11), call 2: control (session-5 binary 8b80dc5) vs this branch at bs1,
# in-graph timeline (lighter %gridid stamps) + in-process A/B of trigger modes / tcm / cl; checks with
# the candidate default. One tar: $OUT/a2.tgz
set -uo pipefail
C=.carry/A; B=$C/trtforge; O=/tmp/a2; mkdir -p $O/tl $O/sm
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc /tmp/kc5; cp $C/kcache/* /tmp/kc/ 2>/dev/null; cp $C/main/kc/* /tmp/kc5/
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/run2.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/a2.tgz -C /tmp a2; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
echo "== control: session-5 binary"
TRTFORGE_CACHE_DIR=/tmp/kc5 timeout 40 $C/main/trtforge bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 > $O/ctl_tl.log 2>&1; echo rc=$?; t
TRTFORGE_CACHE_DIR=/tmp/kc5 timeout 20 $C/main/trtforge bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 > $O/ctl_sm.log 2>&1; echo rc=$?; t
AB=${AB:-base,trig,trigw,trig=211111,trig=122222,trig=221111,tcm,tcm+trig,tcm+trigw,tcm+trig=221111,cl+trigw,cl+trig=221111,base}
export TRTFORGE_TIMELINE=1
TRTFORGE_TIMELINE_RAW=$O/tl TRTFORGE_BS1_AB=$AB timeout 150 $B bench --model preset:tinyllama-1.1b --precisions fp16,int8,int4 --batch-sizes 1 --input-lens 512 --output-len 128 --json $O/tl.json > $O/tl.log 2>&1; echo rc=$?; t
TRTFORGE_TIMELINE_RAW=$O/sm TRTFORGE_BS1_AB=$AB timeout 30 $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --json $O/sm.json > $O/sm.log 2>&1; echo rc=$?; t
unset TRTFORGE_TIMELINE
echo "== checks (TRTFORGE_BS1=${CHK_BS1:=tcm+trig})"
TRTFORGE_BS1=$CHK_BS1 TRTFORGE_CHECKS=attn timeout ${CHK_T:-50} $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_attn.log 2>&1; echo rc=$?; grep -E "FAIL|passed" $O/check_attn.log | tail -5; t
grep -hE "decode [0-9]+ tok/s" $O/ctl_tl.log $O/ctl_sm.log
grep -hE "variant|bs1: TTFT" $O/tl.log $O/sm.log
grep -hE "(default|base) rep1 timeline" $O/tl.log $O/sm.log | head -34
