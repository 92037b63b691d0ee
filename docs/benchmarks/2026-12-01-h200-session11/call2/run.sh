#!/usr/bin/env bash
# Session 11 call 2: where the folded combine's time goes at TinyLlama fp16 bs1 (in-graph timeline, default vs
# ocomb), then bs1 sweeps of attn_decode_cg's split count at one row, with and without the fold, per engine.
set -uo pipefail
C=.carry/s11b; B=$C/trtforge; O=/tmp/s11b; mkdir -p $O/raw
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s11b.tgz -C /tmp s11b; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 80 $B bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "variant|^\| (fp|int)|rror" $O/$n.log | sed -e 's/decode //' | cut -c1-120; t; }
E=(TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_RAW=$O/raw TRTFORGE_BS1_AB=default+ocomb,default+cg+ocomb+ns2,default+cg+ns8); bn tl_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1
grep -E "rep2 timeline" $O/tl_fp16.log | cut -c1-200
E=(TRTFORGE_BS1_AB=default,default+cg,default+cg+ns8,default+cg+ns10,default+cg+ocomb+ns8,default+cg+ocomb+ns10,default+ocomb,default); bn b_smol smollm2-135m --precisions fp16 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,default+cg,default+cg+ns8,default+cg+ns10,default+cg+ns2,default+cg+ocomb+ns2,default); bn b_int4 tinyllama-1.1b --precisions int4 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,default+cg,default+cg+ns8,default+trigw+cg,default+cg+ocomb+ns2,default); bn b_int8 tinyllama-1.1b --precisions int8 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,default+cg,default+cg+ns8,default+cg+ocomb+ns2,default); bn b_fp8 tinyllama-1.1b --precisions fp8 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,default+cg+ns8,default+cg+ns10,default+ocomb+ns2,default); bn b_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1
E=(TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_RAW=$O/raw TRTFORGE_BS1_AB=default+cg+ocomb+ns8); bn tl_smol smollm2-135m --precisions fp16 --batch-sizes 1
grep -E "rep2 timeline" $O/tl_smol.log | cut -c1-200
