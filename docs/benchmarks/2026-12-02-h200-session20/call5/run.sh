#!/usr/bin/env bash
# Session 20, call 5: the opt-in TRTFORGE_TC_PF2=1 build (int4 gate/up and head keep the next tile's loads in flight;
# call 4's timeline: a gate/up block's extra tile costs ≈ 3.3 µs) against the default, alternating processes, bs 1 / 8.
set -uo pipefail
C=.carry/s20d; B=$C/trtforge; D=docs/benchmarks/2026-12-02-h200-session20; O=/tmp/s20c5; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $D/call5/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s20c5.tgz -C /tmp s20c5; }
trap fin EXIT
date -u; cat $C/commit.txt
nb() { local n=$1; shift; env "${E[@]}" timeout 60 $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --isolate never --json $O/$n.json "$@" > $O/$n.log 2>&1
  echo "$n rc=$?"; grep -E "^\| (fp|int)|rror" $O/$n.log | cut -c1-120; t; }
E=(X=1); nb int4_def_a --precisions int4 --batch-sizes 1,8
E=(TRTFORGE_TC_PF2=1); nb int4_pf2_a --precisions int4 --batch-sizes 1,8
E=(X=1); nb int4_def_b --precisions int4 --batch-sizes 1,8
E=(TRTFORGE_TC_PF2=1); nb int4_pf2_b --precisions int4 --batch-sizes 1,8
