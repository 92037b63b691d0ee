#!/usr/bin/env bash
# Session 10 call 4: attn_decode_cg at 2-8 rows the default (`mcg`, 8 stages, 4 splits at a 640 context).
# Checks of that default first, then one bench process per precision at bs 1/8/64 with the previous
# default re-timed beside it in the same process (TRTFORGE_BS1_AB: new, old, new, old), SmolLM2 shape.
set -uo pipefail
C=.carry/s10d; B=$C/trtforge; O=/tmp/s10d; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s10d.tgz -C /tmp s10d; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
chk() { local n=$1 to=$2 list=$3; shift 3
  env "$@" TRTFORGE_CHECKS=$list timeout $to $B cuda-check --tiny tests/fixtures/tiny_llama ${TL:-} > $O/check_$n.log 2>&1; echo "check $n rc=$?"
  grep -E "FAIL|passed" $O/check_$n.log | tail -4; t; }
chk bs1q 60 bs1q
chk attn 60 attn
TL=--tinyllama chk prefill_tl 90 prefill
TL=--tinyllama chk attn_tl 120 attn
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 75 $B bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "variant|^\| (fp|int)" $O/$n.log | sed -e 's/decode //' | cut -c1-110; t; }
E=(TRTFORGE_BS1_AB=default,trig+mtrigw,default,trig+mtrigw); bn b_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1,8,64
E=(TRTFORGE_BS1_AB=default,mtrigw,default,mtrigw); bn b_int8 tinyllama-1.1b --precisions int8 --batch-sizes 1,8,64
E=(TRTFORGE_BS1_AB=default,trigw+mtrigw+cl+scpre+scpre8,default,trigw+mtrigw+cl+scpre+scpre8); bn b_int4 tinyllama-1.1b --precisions int4 --batch-sizes 1,8,64
E=(TRTFORGE_BS1_AB=default,mtrigw,default,mtrigw); bn b_fp8 tinyllama-1.1b --precisions fp8 --batch-sizes 1,8,64
E=(TRTFORGE_BS1_AB=default,trigw+cl,default,trigw+cl); bn b_smol smollm2-135m --precisions fp16 --batch-sizes 1,8
