#!/usr/bin/env bash
# Session 10 call 3: attn_decode_cg with a ring deep enough for the whole context (TRTFORGE_CG_STAGES=8:
# 32 tiles per block before the wait) and 1 / 2 / 4 splits per (row, kv head), A/B in one process per
# engine (TRTFORGE_BS1_AB), bs1 + bs8.
set -uo pipefail
C=.carry/s10c; B=$C/trtforge; O=/tmp/s10c; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s10c.tgz -C /tmp s10c; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 60 $B bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "variant" $O/$n.log | sed -e 's/decode //' | cut -c1-110; }
AB=default,default+cg+ns1,default+cg+ns2,default+cg+ns4,default
for p in fp16 int4 int8 fp8; do
  E=(TRTFORGE_CG_STAGES=8 TRTFORGE_BS1_AB=$AB); bn ab_$p tinyllama-1.1b --precisions $p --batch-sizes 1,8; t
done
E=(TRTFORGE_CG_STAGES=8 TRTFORGE_BS1_AB=$AB,default+cg+ns3); bn ab_smol smollm2-135m --precisions fp16 --batch-sizes 1,8; t
