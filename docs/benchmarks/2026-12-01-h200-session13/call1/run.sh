#!/usr/bin/env bash
# Session 13 call 1: verify HEAD (d0545dd fold_put + the new tc_core code in its default mode) with the bs1q / attn
# checks; bs1 + bs8 A/B of the two new switches per engine in one process each: r2 / mr2 (qkv at two blocks per
# SM: 160 blocks of one tile instead of 80 of two) and dyn / mdyn (tiles after the first from a counter);
# s12f's binary (8534f9f) as the control for the default path; fp16 timeline with r2 + dyn.
set -uo pipefail
C=.carry/s13a; B=$C/trtforge; O=/tmp/s13a; mkdir -p $O/raw
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* .carry/s12f/kc_fp16/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s13a.tgz -C /tmp s13a; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 75 ${BIN:-$B} bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "variant|^\| (fp|int)|rror" $O/$n.log | sed -e 's/decode //' | cut -c1-120; t; }
chk() { local n=$1 to=$2 list=$3; shift 3
  env "$@" TRTFORGE_CHECKS=$list timeout $to $B cuda-check --tiny tests/fixtures/tiny_llama ${TL:-} > $O/check_$n.log 2>&1; echo "check $n rc=$?"
  grep -E "FAIL|passed" $O/check_$n.log | tail -4; grep -c PASS $O/check_$n.log; t; }
chk bs1q 70 bs1q
chk bs1q_new 70 bs1q TRTFORGE_BS1=default+r2+mr2+dyn+mdyn
chk attn 60 attn
V=default,default+r2,default+dyn,default+r2+dyn,default+mr2,default+mdyn,default+mr2+mdyn,default
E=(TRTFORGE_BS1_AB=$V); bn b_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1,8
E=(TRTFORGE_BS1_AB=default,default+dyn,default+mdyn,default); BIN=.carry/s12f/trtforge bn ctl_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1,8
E=(TRTFORGE_BS1_AB=default,default+dyn,default+mdyn,default+dyn+mdyn,default); bn b_int4 tinyllama-1.1b --precisions int4 --batch-sizes 1,8
E=(TRTFORGE_BS1_AB=default,default+dyn,default+mdyn,default+dyn+mdyn,default); bn b_int8 tinyllama-1.1b --precisions int8 --batch-sizes 1,8
E=(TRTFORGE_BS1_AB=default,default+dyn,default+mdyn,default+r2+mr2,default); bn b_smol smollm2-135m --precisions fp16 --batch-sizes 1,8
E=(TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_RAW=$O/raw TRTFORGE_BS1_AB=default,default+r2+dyn); bn tl_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1
grep -E "rep2 timeline" $O/tl_fp16.log | cut -c1-200
