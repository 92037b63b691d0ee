#!/usr/bin/env bash
# Session 12 call 5: the folded o GEMV in clusters (oclN: each block combines 1/N of the heads, x shared through
# DSMEM) — bs1 A/B per engine in one process, a TinyLlama fp16 timeline, then checks with it on.
set -uo pipefail
C=.carry/s12e; B=$C/trtforge; O=/tmp/s12e; mkdir -p $O/raw
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s12e.tgz -C /tmp s12e; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 75 $B bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "variant|^\| (fp|int)|rror" $O/$n.log | sed -e 's/decode //' | cut -c1-120; t; }
chk() { local n=$1 to=$2 list=$3; shift 3
  env "$@" TRTFORGE_CHECKS=$list timeout $to $B cuda-check --tiny tests/fixtures/tiny_llama ${TL:-} > $O/check_$n.log 2>&1; echo "check $n rc=$?"
  grep -E "FAIL|passed" $O/check_$n.log | tail -4; grep -c PASS $O/check_$n.log; t; }
E=(TRTFORGE_BS1_AB=default,default+ocomb+ocl8,default+ocomb+ocl4,default+cg+ocomb+ocl8,default+ocomb+ocl2,default,default+ocomb+ocl8); bn b_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,default+ocomb+ocl8,default+ocomb+ocl4,default,default+ocomb+ocl8); bn b_int4 tinyllama-1.1b --precisions int4 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,default+ocomb+ocl8,default,default+ocomb+ocl8); bn b_int8 tinyllama-1.1b --precisions int8 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,default+ocl4,default+ocl2,default,default+ocl4); bn b_smol smollm2-135m --precisions fp16 --batch-sizes 1
E=(TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_RAW=$O/raw TRTFORGE_BS1_AB=default+ocomb+ocl8); bn tl_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1
grep -E "rep2 timeline" $O/tl_fp16.log | cut -c1-200
chk attn_ocl 60 attn TRTFORGE_BS1=default+ocl4
TL=--tinyllama chk attn_tl_ocl8 170 attn TRTFORGE_BS1=default+ocomb+ocl8
