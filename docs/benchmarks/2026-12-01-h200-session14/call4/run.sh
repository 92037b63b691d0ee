#!/usr/bin/env bash
# Session 14 call 5: is the final lease's -2 % on int8 / int4 (bs1, bs8) against session 13 the new code (GemvArgs +56 bytes,
# the o GEMV's prefetch test) or the machine? Session 13's binary (42b1aa6) and 20f6c4d alternating, separate processes.
set -uo pipefail
O=/tmp/s14e; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp .carry/s14e/kc/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp .carry/s14e/run.sh $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s14e.tgz -C /tmp s14e; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 bin=$2 p=$3
  timeout 60 $bin bench --model preset:tinyllama-1.1b --precisions $p --batch-sizes 1,8 --input-lens 512 --output-len 128 --json $O/$n.json > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "^\| (fp|int)|rror" $O/$n.log | cut -c1-60; t; }
for p in int8 int4; do
  bn ${p}_new1 .carry/s14b/trtforge $p; bn ${p}_old1 .carry/s14e/trtforge_s13 $p
  bn ${p}_new2 .carry/s14b/trtforge $p; bn ${p}_old2 .carry/s14e/trtforge_s13 $p
done
