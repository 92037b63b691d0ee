#!/usr/bin/env bash
# Session 13 call 2: tc_core back to HEAD's code (the counter-fed `dyn` tiles lost 5-15 % and their code
# slowed the default path ~2-7 % in call 1: removed); new default for TinyLlama-size fp16: qkv at two blocks per
# SM (`r2` / `mr2`). Checks with the new defaults (bs1q, attn); bs1/bs8 A/B: new default vs session 12's
# default vs + ocl16 (clusters of 16 o blocks) vs + sp / msp (one GEMV block per resident slot, tiles round-robin); s12f's binary (8534f9f) as the control for the default path.
set -uo pipefail
C=.carry/s13b; B=$C/trtforge; O=/tmp/s13b; mkdir -p $O/raw
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* .carry/s12f/kc_fp16/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s13b.tgz -C /tmp s13b; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 75 ${BIN:-$B} bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "variant|^\| (fp|int)|rror" $O/$n.log | sed -e 's/decode //' | cut -c1-120; t; }
chk() { local n=$1 to=$2 list=$3; shift 3
  env "$@" TRTFORGE_CHECKS=$list timeout $to $B cuda-check --tiny tests/fixtures/tiny_llama ${TL:-} > $O/check_$n.log 2>&1; echo "check $n rc=$?"
  grep -E "FAIL|passed" $O/check_$n.log | tail -4; grep -c PASS $O/check_$n.log; t; }
S12=off+trig+mtrigw+cg+mcg+ocomb+ocl8
E=(TRTFORGE_BS1_AB=default,$S12,default+ocl16,default+sp+msp,default+ocl16+sp+msp,default,$S12); bn b_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1,8
E=(TRTFORGE_BS1_AB=default); BIN=.carry/s12f/trtforge bn ctl_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1,8
E=(TRTFORGE_BS1_AB=default,default+ocl16,default+sp+msp,default,default+ocl16,default+sp+msp); bn b_int4 tinyllama-1.1b --precisions int4 --batch-sizes 1,8
E=(TRTFORGE_BS1_AB=default,default+ocl16,default+sp+msp,default,default+ocl16,default+sp+msp); bn b_int8 tinyllama-1.1b --precisions int8 --batch-sizes 1,8
E=(TRTFORGE_BS1_AB=default,default+ocl16,default+sp+msp,default,default+ocl16,default+sp+msp); bn b_fp8 tinyllama-1.1b --precisions fp8 --batch-sizes 1,8
E=(TRTFORGE_BS1_AB=default,default+sp+msp,default); bn b_smol smollm2-135m --precisions fp16 --batch-sizes 1,8
chk bs1q 150 bs1q
chk attn 60 attn
