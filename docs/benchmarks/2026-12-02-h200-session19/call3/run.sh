#!/usr/bin/env bash
# Session 19, call 3: why `tcs` lost in call 2 — the in-graph timeline (TRTFORGE_TIMELINE=1: per kernel kind entry / wait /
# trigger / exit stamps) of the default and of tcs at bs1, int4 and int8, in one process each; then tcs with one slot
# (`tcs1`: a block's tiles one after another, i.e. tc_core's schedule through the copy engine) and with tcs only at one
# row, no timeline (the compiled-out build), int4 / int8.
set -uo pipefail
C=.carry/s19b; B=$C/trtforge; D=docs/benchmarks/2026-12-02-h200-session19; O=/tmp/s19c3; mkdir -p $O/raw
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $D/call3/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s19c3.tgz -C /tmp s19c3; }
trap fin EXIT
date -u; cat $C/commit.txt
for p in int4 int8; do
  TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_RAW=$O/raw TRTFORGE_BS1_AB=default,default+tcs timeout 150 $B bench --model preset:tinyllama-1.1b --precisions $p --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never > $O/tl_$p.log 2>&1
  echo "tl_$p rc=$?"; grep -E "variant|rror" $O/tl_$p.log | sed 's/^.*\(bs[0-9]* variant\)/\1/' | cut -c1-150; t
done
for p in int4 int8; do
  TRTFORGE_BS1_AB=default,default+tcs,default+tcs+tcs1,default,default+tcs timeout 150 $B bench --model preset:tinyllama-1.1b --precisions $p --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never > $O/ab_$p.log 2>&1
  echo "ab_$p rc=$?"; grep -E "variant|rror" $O/ab_$p.log | sed 's/^.*\(bs[0-9]* variant\)/\1/' | cut -c1-150; t
done
