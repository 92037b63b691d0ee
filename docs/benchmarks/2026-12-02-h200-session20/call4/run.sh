#!/usr/bin/env bash
# Session 20, call 4: the one-row step's phases after the session's change (down's k-steps in one round), for the next
# session's profile: in-graph timeline (TRTFORGE_TIMELINE=1, the TL_ON build) at bs1, int4 / int8 / fp16, summarized by
# session 19's tl_phases.py; then da23b3d's default int4 build at bs 1 and 8 (int4 cap 3: the same TinyLlama code).
set -uo pipefail
C=.carry/s20c; B=$C/trtforge; D=docs/benchmarks/2026-12-02-h200-session20; O=/tmp/s20c4; mkdir -p $O/raw
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $D/call4/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s20c4.tgz -C /tmp s20c4; }
trap fin EXIT
date -u; cat $C/commit.txt
for p in int4 int8 fp16; do
  mkdir -p $O/raw/$p
  TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_RAW=$O/raw/$p timeout 100 $B bench --model preset:tinyllama-1.1b --precisions $p --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never > $O/tl_$p.log 2>&1
  echo "tl_$p rc=$?"; grep -E "^\| (fp|int)|rror" $O/tl_$p.log | cut -c1-120
  python3 docs/benchmarks/2026-12-02-h200-session19/tl_phases.py $(ls $O/raw/$p/*.csv | head -1) | tee $O/phases_$p.txt; t
done
timeout 90 $B bench --model preset:tinyllama-1.1b --precisions int4 --batch-sizes 1,8 --input-lens 512 --output-len 128 --isolate never --json $O/int4.json > $O/int4.log 2>&1
echo "int4 rc=$?"; grep -E "^\| (fp|int)|rror" $O/int4.log | cut -c1-120; t
