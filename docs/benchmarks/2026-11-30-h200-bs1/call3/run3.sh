#!/usr/bin/env bash
# helper A (branch bs1, issue #11), call 3: the new bs1 default (timeline::bs1_default) vs TRTFORGE_BS1=off
# in one process per model, and its checks. One tar: $OUT/a3.tgz
set -uo pipefail
C=.carry/A; B=$C/trtforge; O=/tmp/a3; mkdir -p $O/tl $O/sm
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/run3.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/a3.tgz -C /tmp a3; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
echo "== checks (engine defaults, then TRTFORGE_BS1=trig)"
TRTFORGE_CHECKS=attn timeout 40 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_attn.log 2>&1; echo rc=$?; grep -E "FAIL|passed" $O/check_attn.log | tail -5; t
TRTFORGE_CHECKS=bs1q timeout 40 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_bs1q.log 2>&1; echo rc=$?; grep -E "FAIL|passed" $O/check_bs1q.log | tail -5; t
TRTFORGE_BS1=trig TRTFORGE_CHECKS=attn timeout 40 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_attn_trig.log 2>&1; echo rc=$?; grep -E "FAIL|passed" $O/check_attn_trig.log | tail -5; t
export TRTFORGE_TIMELINE=1 TRTFORGE_BS1_AB=${AB:-off,default,trigw+cl,trigw+cl+scpre,scpre,trig,off,default}
TRTFORGE_TIMELINE_RAW=$O/tl timeout 120 $B bench --model preset:tinyllama-1.1b --precisions fp16,int8,int4 --batch-sizes 1 --input-lens 512 --output-len 128 --json $O/tl.json > $O/tl.log 2>&1; echo rc=$?; t
TRTFORGE_TIMELINE_RAW=$O/sm timeout 30 $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --json $O/sm.json > $O/sm.log 2>&1; echo rc=$?; t
grep -hE "variant|bs1: TTFT" $O/tl.log $O/sm.log
grep -hE " default rep1 timeline" $O/tl.log $O/sm.log | head -40
