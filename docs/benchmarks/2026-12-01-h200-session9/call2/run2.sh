#!/usr/bin/env bash
# Session 9 call 2: the binary with rmsnorm_b as the default (commit.txt). One bench process per precision,
# bs 1/8/64, prompt 512, 128 new; then in-process A/B of the 2-8-row decode switches at fp16 / int4 bs8.
set -uo pipefail
C=.carry/final9b; B=$C/trtforge; O=/tmp/f9b; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run2.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/final9b.tgz -C /tmp f9b; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 to=$2; shift 2
  env "${E[@]}" timeout $to $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "^\|" $O/$n.log | grep -v -- "---" | tail -4; t; }
E=(X=1); for p in fp16 int8 int4 fp8; do bn tl_$p 90 --precisions $p --batch-sizes 1,8,64; done
V=default,default+ns1,default+ns2,default+ns4,default+ns8,default+ns16,default+cl,default+mtrig,default+mtrig=202222,default+mtrig=220222,default+occ1,default+scpre8,default
E=(TRTFORGE_BS1_AB=$V); bn ab_fp16_bs8 60 --precisions fp16 --batch-sizes 8
grep variant $O/ab_fp16_bs8.log
E=(TRTFORGE_BS1_AB=$V); bn ab_int4_bs8 60 --precisions int4 --batch-sizes 8
grep variant $O/ab_int4_bs8.log
