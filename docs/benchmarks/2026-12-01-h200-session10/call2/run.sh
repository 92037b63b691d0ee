#!/usr/bin/env bash
# Session 10 call 2: attn_decode_cg (bs1 switch `cg`: K/V before the wait, no cluster, partials + last-block
# combine) A/B in one bench process per engine (TRTFORGE_BS1_AB), bs1 + bs8; bs1 timeline with it; checks.
set -uo pipefail
C=.carry/s10b; B=$C/trtforge; O=/tmp/s10b; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s10b.tgz -C /tmp s10b; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 60 $B bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "variant|^\| (fp|int)" $O/$n.log | sed -e 's/decode //' | cut -c1-110; }
E=(TRTFORGE_BS1_AB=default,default+cg,default+cg+ns5,default+cg+ns20,default+cg+ns3,default); bn ab_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1,8; t
for p in int4 int8 fp8; do
  E=(TRTFORGE_BS1_AB=default,default+cg,default+cg+ns5,default); bn ab_$p tinyllama-1.1b --precisions $p --batch-sizes 1,8
done; t
E=(TRTFORGE_BS1_AB=default,default+cg,default+cg+ns5,default+cg+ns20,default); bn ab_smol smollm2-135m --precisions fp16 --batch-sizes 1,8; t
E=(TRTFORGE_TIMELINE=1 TRTFORGE_BS1=trig+mtrigw+cg); bn tl_cg_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1; t
chk() { local n=$1 to=$2 list=$3; shift 3
  env "$@" TRTFORGE_CHECKS=$list timeout $to $B cuda-check --tiny tests/fixtures/tiny_llama ${TL:-} > $O/check_$n.log 2>&1; echo "check $n rc=$?"
  grep -E "FAIL|passed" $O/check_$n.log | tail -4; t; }
chk attn_cg 90 attn TRTFORGE_BS1=cg
chk prefill_cg 90 prefill TRTFORGE_BS1=cg
chk bs1q_cg 60 bs1q TRTFORGE_BS1=trig+mtrigw+cg
chk attn 90 attn
