#!/usr/bin/env bash
# Session 9 call 3: batched RMSNorm staging of the 2-8-row GEMVs (STAGE_NB, default in this binary) vs
# TRTFORGE_STAGE_NB=0 (session-8 staging), separate processes alternating, bs 1 and 8; then its checks.
set -uo pipefail
C=.carry/s9c; B=$C/trtforge; O=/tmp/s9c; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run3.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s9c.tgz -C /tmp s9c; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 45 $B bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "^\| (fp|int)" $O/$n.log | cut -d'|' -f2-7; }
for p in fp16 int8 int4 fp8; do
  E=(X=1); bn new_$p tinyllama-1.1b --precisions $p --batch-sizes 1,8
  E=(TRTFORGE_STAGE_NB=0); bn old_$p tinyllama-1.1b --precisions $p --batch-sizes 1,8
done; t
E=(X=1); bn new_smollm2 smollm2-135m --precisions fp16 --batch-sizes 1,8
E=(TRTFORGE_STAGE_NB=0); bn old_smollm2 smollm2-135m --precisions fp16 --batch-sizes 1,8
E=(X=1); bn new2_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1,8; t
chk() { local n=$1 to=$2 list=$3; shift 3
  env "$@" TRTFORGE_CHECKS=$list timeout $to $B cuda-check --tiny tests/fixtures/tiny_llama ${TL:-} > $O/check_$n.log 2>&1; echo "check $n rc=$?"
  grep -E "FAIL|passed" $O/check_$n.log | tail -4; t; }
chk bs1q 45 bs1q
chk attn 45 attn
TL=--tinyllama chk prefill_tl 80 prefill
