#!/usr/bin/env bash
# Session 19, call 4: tcs by role and schedule (call 3's timeline: int8 qkv through tcs 4.7 -> 3.7 us a layer, but the
# o GEMV before gate/up 5.4 -> 6.8 us while gate/up's early bulk loads flew, and gate/up itself no faster: after its
# data has landed a block still reduces its 3 tiles one after another). Variants, same process per precision, bs1:
#   q      tcs on qkv only;            g4     gate/up only, 4 tiles a round (tcsr4: 16/R warps per tile, one reduction)
#   g4w1   g4 with only the first slot issued before griddepcontrol.wait (the rest after it)
#   q+g4w1 both;  h4  the head only, R = 4 (capped by its slots)
set -uo pipefail
C=.carry/s19c; B=$C/trtforge; D=docs/benchmarks/2026-12-02-h200-session19; O=/tmp/s19c4; mkdir -p $O/raw
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $D/call4/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s19c4.tgz -C /tmp s19c4; }
trap fin EXIT
date -u; cat $C/commit.txt
V="default,default+tcs+tcsq,default+tcs+tcsg+tcsr4,default+tcs+tcsg+tcsr4+tcsw1,default+tcs+tcsq+tcsg+tcsr4+tcsw1,default+tcs+tcsh+tcsr4,default"
for p in int4 int8 fp8 fp16; do
  TRTFORGE_BS1_AB=$V timeout 150 $B bench --model preset:tinyllama-1.1b --precisions $p --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never > $O/ab_$p.log 2>&1
  echo "ab_$p rc=$?"; grep -E "variant|rror" $O/ab_$p.log | sed 's/^.*\(bs[0-9]* variant\)/\1/' | cut -c1-150; t
done
