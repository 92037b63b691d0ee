#!/usr/bin/env bash
# Session 12 call 2: why the folded combine (ocomb v2) still costs TinyLlama's o GEMV +4.7 µs a layer: the o
# trigger mode (gate/up launched at o's entry prefetches its weights while o copies its records) and fewer o
# blocks (tccN); then the 4k bs64 fp8-KV attention kernels (attn_decode_tc default vs cl / cl8).
set -uo pipefail
C=.carry/s12b; B=$C/trtforge; O=/tmp/s12b; mkdir -p $O/raw
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s12b.tgz -C /tmp s12b; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 80 $B bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "variant|^\| (fp|int)|rror" $O/$n.log | sed -e 's/decode //' | cut -c1-120; t; }
E=(TRTFORGE_BS1_AB=default,default+ocomb,default+ocomb+trig=110111,default+ocomb+trig=112111,default+ocomb+tcc2,default+ocomb+tcc4,default+cg+ocomb+tcc2,default+ocomb+tcc2+trig=110111,default); bn b_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,default+ocomb,default+ocomb+trig=220222,default+ocomb+tcc2,default+ocomb+tcc2+trig=220222,default); bn b_int4 tinyllama-1.1b --precisions int4 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,default+tcc2,default+trig=220222,default+tcc2+trig=220222,default); bn b_smol smollm2-135m --precisions fp16 --batch-sizes 1
E=(TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_RAW=$O/raw TRTFORGE_BS1_AB=default+ocomb+trig=110111,default+ocomb+tcc2); bn tl_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1
grep -E "rep2 timeline" $O/tl_fp16.log | cut -c1-200
for a in cl cl8all; do
  TRTFORGE_ATTN=$a timeout 100 $B bench --model preset:tinyllama-1.1b --precisions fp16 --kv-cache fp8 --max-model-len 4096 --batch-sizes 64 --input-lens 4032 --output-len 64 --runs 1 --json $O/kv4k_$a.json > $O/kv4k_$a.log 2>&1; echo "kv4k $a rc=$?"; grep -E "^\| fp|rror|eager" $O/kv4k_$a.log; t
done
