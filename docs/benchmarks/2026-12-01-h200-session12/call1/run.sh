#!/usr/bin/env bash
# Session 12 call 1: ocomb v2 (the fold records in f16, normalised per split, weights once per head in
# stage_comb): checks with the fold on (tc at one row: default+ocomb; cg at one row: default+cg+ocomb), bs1 A/B
# per engine in one process, a TinyLlama fp16 timeline with it, and the 4k bs64 fp8-KV row of issue #15.
set -uo pipefail
C=.carry/s12a; B=$C/trtforge; O=/tmp/s12a; mkdir -p $O/raw
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s12a.tgz -C /tmp s12a; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 80 $B bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "variant|^\| (fp|int)|rror" $O/$n.log | sed -e 's/decode //' | cut -c1-120; t; }
chk() { local n=$1 to=$2 list=$3; shift 3
  env "$@" TRTFORGE_CHECKS=$list timeout $to $B cuda-check --tiny tests/fixtures/tiny_llama ${TL:-} > $O/check_$n.log 2>&1; echo "check $n rc=$?"
  grep -E "FAIL|passed" $O/check_$n.log | tail -4; t; }
chk bs1q_tc 120 bs1q TRTFORGE_BS1=default+ocomb
chk attn_cg 110 attn TRTFORGE_BS1=default+cg+ocomb
E=(TRTFORGE_BS1_AB=default,default+ocomb,default+cg+ocomb,default+ocomb+ns8,default,default+ocomb); bn b_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1
E=(TRTFORGE_BS1_AB=off+trigw+cg+mcg,default,off+trigw+cg+mcg,default,default+ns12,default+ns8); bn b_smol smollm2-135m --precisions fp16 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,default+ocomb,default,default+ocomb); bn b_int8 tinyllama-1.1b --precisions int8 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,default+ocomb,default,default+ocomb); bn b_int4 tinyllama-1.1b --precisions int4 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,default+ocomb,default,default+ocomb); bn b_fp8 tinyllama-1.1b --precisions fp8 --batch-sizes 1
E=(TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_RAW=$O/raw TRTFORGE_BS1_AB=default,default+ocomb,default+cg+ocomb); bn tl_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1
grep -E "rep2 timeline" $O/tl_fp16.log | cut -c1-200
# issue #15: fp8 KV at a 4k context, bs64, against fp16 KV in the same process (session 7: 1.29x)
timeout 150 $B bench --model preset:tinyllama-1.1b --precisions fp16 --kv-cache fp16,fp8 --max-model-len 4096 --batch-sizes 64 --input-lens 4032 --output-len 64 --runs 1 --json $O/kv4k.json > $O/kv4k.log 2>&1; echo "kv4k rc=$?"; grep -E "^\| fp|rror" $O/kv4k.log; t
