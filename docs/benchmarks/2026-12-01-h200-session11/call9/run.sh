#!/usr/bin/env bash
# Session 11 call 9: why 12 cg splits at one row lose against 10 (SmolLM2 shape, ocomb): in-graph timelines of
# 10 (the default), 12 and 8 splits in one process; raw launch CSVs.
set -uo pipefail
C=.carry/s11i; B=$C/trtforge; O=/tmp/s11i; mkdir -p $O/raw
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s11i.tgz -C /tmp s11i; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
E=(TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_RAW=$O/raw TRTFORGE_BS1_AB=default+ns12,default+ns8,default)
env "${E[@]}" timeout 60 $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --json $O/tl_smol.json > $O/tl_smol.log 2>&1; echo "rc=$?"; t
grep -E "variant|rep2 timeline" $O/tl_smol.log | cut -c1-190
