#!/usr/bin/env bash
# Session 11 call 1: the split attention's combine folded into the one-row o GEMV's prologue (bs1 switch
# `ocomb`: attn_decode_tc / attn_decode_cg store partial records only, tcc_* combines them into x).
# Checks with the fold on (tc at one row: trig+ocomb; cg at one row: default+cg+ocomb), then one bench
# process per engine at bs1 with the variants re-timed in the same process (TRTFORGE_BS1_AB).
set -uo pipefail
C=.carry/s11a; B=$C/trtforge; O=/tmp/s11a; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s11a.tgz -C /tmp s11a; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 80 $B bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "variant|^\| (fp|int)|rror" $O/$n.log | sed -e 's/decode //' | cut -c1-120; t; }
E=(TRTFORGE_BS1_AB=default,default+ocomb,default+cg+ocomb,default+ocomb+ns8,default+ocomb+ns5,default+cg,default+cg+ocomb+trig=121111,default+ocomb,default); bn b_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,default+ocomb,default+cg+ocomb,default+trigw+ocomb,default+ocomb,default); bn b_int8 tinyllama-1.1b --precisions int8 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,default+cg+ocomb,default+cg,default+cg+ocomb+ns8,default+cg+ocomb,default); bn b_int4 tinyllama-1.1b --precisions int4 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,default+cg+ocomb,default+cg+ocomb+ns8,default+cg+ocomb,default); bn b_smol smollm2-135m --precisions fp16 --batch-sizes 1
chk() { local n=$1 to=$2 list=$3; shift 3
  env "$@" TRTFORGE_CHECKS=$list timeout $to $B cuda-check --tiny tests/fixtures/tiny_llama ${TL:-} > $O/check_$n.log 2>&1; echo "check $n rc=$?"
  grep -E "FAIL|passed" $O/check_$n.log | tail -4; t; }
chk bs1q_tc 110 bs1q TRTFORGE_BS1=trig+ocomb
chk attn_cg 110 attn TRTFORGE_BS1=default+cg+ocomb
