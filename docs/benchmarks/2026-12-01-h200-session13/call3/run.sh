#!/usr/bin/env bash
# Session 13 call 3: with the new defaults (r2 / mr2 for TinyLlama-size fp16, sp / msp everywhere): per-kind trigger
# sweep at one row (fp16, int4, int8: one kind's trigger mode changed at a time), then in-graph timelines of the
# new defaults (fp16, int4 bs1; fp16 bs8) for the per-kernel profile.
set -uo pipefail
C=.carry/s13c; B=$C/trtforge; O=/tmp/s13c; mkdir -p $O/raw
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s13c.tgz -C /tmp s13c; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 90 $B bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "variant|^\| (fp|int)|rror" $O/$n.log | sed -e 's/decode //' | cut -c1-120; t; }
E=(TRTFORGE_BS1_AB=default,default+trig=211111,default+trig=121111,default+trig=112111,default+trig=111211,default+trig=111121,default+trig=111112,default+trigw,default); bn sw_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,default+trig=122222,default+trig=212222,default+trig=221222,default+trig=222122,default+trig=222212,default+trig=222221,default+trig,default); bn sw_int4 tinyllama-1.1b --precisions int4 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,default+trig=122222,default+trig=212222,default+trig=221222,default+trig=222122,default+trig=222212,default+trig=222221,default+trig,default); bn sw_int8 tinyllama-1.1b --precisions int8 --batch-sizes 1
E=(TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_RAW=$O/raw TRTFORGE_BS1_AB=default); bn tl_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1,8
E=(TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_RAW=$O/raw TRTFORGE_BS1_AB=default); bn tl_int4 tinyllama-1.1b --precisions int4 --batch-sizes 1
grep -E "rep2 timeline" $O/tl_fp16.log $O/tl_int4.log | cut -c1-220
