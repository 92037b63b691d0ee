#!/usr/bin/env bash
# Session 24 call 5 (carry .carry/s31, call 4's binary and cache): the one-row fold's shape knobs again on today's
# default path (measured last in sessions 12-13): o clusters of 4 / 16 (`ocl4`, `ocl16`), two copies of the split
# records (`rep2`), two o tiles a block (`tcc2`), fp16 and int4, one process each (TRTFORGE_BS1_AB, same tokens).
set -uo pipefail
C=.carry/s31; B=$C/trtforge; D=docs/benchmarks/2026-12-02-h200-session24/call5; O=/tmp/s31b; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $D/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s31b.tgz -C /tmp s31b; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
for p in fp16 int4; do
  TRTFORGE_BS1_AB="default,default+ocl4,default+ocl16,default+rep2,default+tcc2,default+ocl16+rep2,default" timeout 150 $B bench --model preset:tinyllama-1.1b --precisions $p --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never > $O/ab_$p.log 2>&1
  echo "ab $p rc=$?"; grep -E "variant|rror" $O/ab_$p.log | sed 's/decode //; s/ tok.s (/ /; s/ ms.step; tokens == the first variant.s)/ ms =/' | cut -c1-120; t
done
