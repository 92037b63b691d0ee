#!/usr/bin/env bash
# helper A (branch bs7, issues #11/#15), call 1: checks of the new defaults (fp8 bs1 switches,
# argmax_mb, timeline stamps compiled out) and of the bs8 trigger candidates (mtrig: the earliest
# trigger, with scpre8), then in-process A/B (TRTFORGE_BS1_AB) at bs1 and bs8 in four module
# builds: v0 (this commit's default), cap (TRTFORGE_TC_MINB=2), cap8 (+ TRTFORGE_TC_MINB8=3),
# tlon (TRTFORGE_TL_ON=1: the session-6 code generation, control). One tar: $OUT/a1.tgz
set -uo pipefail
C=.carry/A; B=$C/trtforge; O=/tmp/a1; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/run1.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/a1.tgz -C /tmp a1; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
# Modules not precompiled on the CPU machine: compiled here in parallel in the background (16 cores)
# while the checks run (each PRECOMPILE run returns at once when its module is cached).
pre() { for p in $2; do env $1 TRTFORGE_CUDA_PRECOMPILE=sm_90 $B bench --model preset:tinyllama-1.1b --precisions $p --batch-sizes 1 --input-lens 16 --output-len 4 > $O/pre_${p}_${1//[ =]/_}.log 2>&1 & done; }
for e in TRTFORGE_TC_MINB=2 TRTFORGE_TL_ON=1; do env $e TRTFORGE_CUDA_PRECOMPILE=sm_90 $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 16 --output-len 4 > $O/pre_sm_${e//[ =]/_}.log 2>&1 & done
pre TRTFORGE_X=0 "fp8 int4 fp16"; pre TRTFORGE_TC_MINB=2 "fp16 int8 fp8"; pre "TRTFORGE_TC_MINB=2 TRTFORGE_TC_MINB8=3" "int8 fp8"; pre TRTFORGE_TL_ON=1 "fp16 int8"
echo "== checks"
TRTFORGE_CHECKS=bs1q timeout 60 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_bs1q.log 2>&1; echo rc=$?; grep -E "FAIL|passed" $O/check_bs1q.log | tail -5; t
TRTFORGE_BS1=trig+mtrig+scpre8+cl TRTFORGE_CHECKS=bs1q timeout 60 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_bs1q_mtrig.log 2>&1; echo rc=$?; grep -E "FAIL|passed" $O/check_bs1q_mtrig.log | tail -5; t
TRTFORGE_CHECKS=attn timeout 45 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_attn.log 2>&1; echo rc=$?; grep -E "FAIL|passed" $O/check_attn.log | tail -4; t
bench() { local tag=$1 precs=$2 ab=$3 to=$4; shift 4; env "$@" TRTFORGE_BS1_AB=$ab timeout $to $B bench --model preset:tinyllama-1.1b --precisions $precs --batch-sizes 1,8 --input-lens 512 --output-len 128 --json $O/$tag.json > $O/$tag.log 2>&1; echo "$tag rc=$?"; t; }
wait; echo "precompiled"; grep -h "cached (" $O/pre_*.log | head -12; t
echo "== bench"
bench v0 fp16,int8,int4,fp8 ${AB0:-off+am1,default,default+am1,default+mtrigw,default+mtrig,default+mtrigw+scpre8} 120 TRTFORGE_X=0
bench cap fp16,int8,fp8 default,default+mtrigw,default+mtrig 80 TRTFORGE_TC_MINB=2
bench cap8 int8,fp8 default,default+mtrigw,default+mtrig 50 TRTFORGE_TC_MINB=2 TRTFORGE_TC_MINB8=3
bench tlon fp16,int8 default,default+mtrigw 50 TRTFORGE_TL_ON=1
for e in TRTFORGE_X=0 TRTFORGE_TC_MINB=2 TRTFORGE_TL_ON=1; do env $e TRTFORGE_BS1_AB=default,default+am1 timeout 25 $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --json $O/sm_${e#TRTFORGE_}.json > $O/sm_${e#TRTFORGE_}.log 2>&1; echo "sm $e rc=$?"; done; t
for f in v0 cap cap8 tlon sm_X=0 sm_TC_MINB=2 sm_TL_ON=1; do grep -hE "variant|bs[18]: TTFT" $O/$f.log | sed "s/^/$f /"; done
if [ -n "${EXTRA:-}" ]; then echo "== extra"; eval "$EXTRA"; t; fi
