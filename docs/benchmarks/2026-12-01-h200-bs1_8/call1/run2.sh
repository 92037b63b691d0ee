#!/usr/bin/env bash
# helper A (branch bs1_8, session 8), ONE call: the opt-in register-capped one-row GEMVs
# (TRTFORGE_TC_R1=1: int8/fp8 every tc role [session 7] + fp16 o/down [session 8];
#  TRTFORGE_TC_R1=o: fp16 o only, since the capped fp16 down spills 284 B) vs the defaults.
# Separate processes per switch (read once per process). Checks bs1q with each switch.
# One tar: $OUT/a2.tgz
set -uo pipefail
C=.carry/A; B=$C/trtforge; O=/tmp/a2; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; tar xzf $C/kcache.tgz -C /tmp/kc
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
# whole script <= DL s: each timeout is cut to what is left (at least 1 s)
DL=${DL:-160}; L() { local r=$(( DL - ($(date +%s) - T0) )); [ $r -lt 1 ] && r=1; [ $r -lt $1 ] && echo $r || echo $1; }
fin() { cp $C/run2.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/a2.tgz -C /tmp a2; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
echo "== checks"
for e in TRTFORGE_X=0 TRTFORGE_TC_R1=1 TRTFORGE_TC_R1=o; do
  env $e TRTFORGE_CHECKS=bs1q timeout $(L 30) $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_bs1q_${e#TRTFORGE_}.log 2>&1; echo "bs1q $e rc=$?"; grep -E "FAIL|passed" $O/check_bs1q_${e#TRTFORGE_}.log | tail -3; t
done
echo "== bench"
AB=${AB:-default,default}
b() { local e=$1 precs=$2 bss=$3 to=$4 tag=$5; env $e TRTFORGE_BS1_AB=$AB timeout $(L $to) $B bench --model preset:tinyllama-1.1b --precisions $precs --batch-sizes $bss --input-lens 512 --output-len 128 --json $O/$tag.json > $O/$tag.log 2>&1; echo "$tag rc=$?"; t; }
b TRTFORGE_X=0 fp16,int8,int4,fp8 1,8 55 b_X=0
b TRTFORGE_TC_R1=1 fp16,int8,int4,fp8 1,8 55 b_TC_R1=1
b TRTFORGE_TC_R1=o fp16 1,8 20 b_TC_R1=o
b TRTFORGE_X=0 fp16 1 15 b_X=0_again
for e in TRTFORGE_X=0 TRTFORGE_TC_R1=1 TRTFORGE_TC_R1=o; do env $e TRTFORGE_BS1_AB=$AB timeout $(L 15) $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --json $O/sm_${e#TRTFORGE_}.json > $O/sm_${e#TRTFORGE_}.log 2>&1; echo "sm $e rc=$?"; done; t
for f in b_X=0 b_TC_R1=1 b_TC_R1=o b_X=0_again sm_X=0 sm_TC_R1=1 sm_TC_R1=o; do grep -hE "variant|bs[18]: TTFT|^\| (fp16|int|fp8)" $O/$f.log | sed "s/^/$f /"; done
ls /tmp/kc | wc -l
