#!/usr/bin/env bash
# Session 11 call 6: cg1_splits capped at 10 — SmolLM2 shape bs 1/8 (bs1 against 12 and 8 splits in the same
# process), then the int4 bs1 in-graph timeline with the new default (cg at one row).
set -uo pipefail
C=.carry/s11f; B=$C/trtforge; O=/tmp/s11f; mkdir -p $O/raw
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s11f.tgz -C /tmp s11f; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 70 $B bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "variant|^\| (fp|int)|rror" $O/$n.log | sed -e 's/decode //' | cut -c1-120; t; }
E=(); bn b_smol smollm2-135m --precisions fp16 --batch-sizes 1,8
E=(TRTFORGE_BS1_AB=default,default+ns12,default+ns8,default,default+ns12); bn b_smol1 smollm2-135m --precisions fp16 --batch-sizes 1
E=(TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_RAW=$O/raw); bn tl_int4 tinyllama-1.1b --precisions int4 --batch-sizes 1
grep -E "rep2 timeline" $O/tl_int4.log | cut -c1-200
