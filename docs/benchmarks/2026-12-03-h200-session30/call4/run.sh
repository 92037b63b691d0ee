#!/usr/bin/env bash
# Session 30 call 4: megakernel probe v4 (mk_v4.cu: the profile split further — attention items, run signals, tiles — and
# SIG=1: fence.acq_rel / red.release instead of __threadfence + atomicAdd) and v5 (mk.cu: AKV — the attention's old K / V
# rows by the loader, the merge in o's staging; ROT — rotating epilogue warp). Variants as name:source:flags
# (flags comma-separated).
# mk_v4.cu was mk.cu as of commit 5006b74 (`git show 5006b74:docs/benchmarks/2026-12-03-h200-session30/mk/mk.cu`); it was
# deleted after the session as a duplicate. Today's mk.cu built with -DAKV=0 -DROT=0 is the same kernel (call 5 "base": 831 µs).
set -uo pipefail
D=docs/benchmarks/2026-12-03-h200-session30; O=/tmp/s30d; mkdir -p $O
export PATH=/usr/local/cuda/bin:$PATH
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { git rev-parse HEAD > $O/commit.txt 2>/dev/null; tar czf ${OUT:-/tmp}/s30d.tgz -C /tmp s30d; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; } > $O/env.txt 2>&1; cat $O/env.txt
VARS=${VARS:-"v4prof:mk_v4:-DPROF=1 v4sig1prof:mk_v4:-DSIG=1,-DPROF=1 v5:mk: v5sig1:mk:-DSIG=1 v5sig1prof:mk:-DSIG=1,-DPROF=1 v5nw:mk:-DSIG=1,-DNOWAIT=1 v5ncw16:mk:-DSIG=1,-DNCW=16 v4sig1:mk_v4:-DSIG=1"}
for spec in $VARS; do IFS=: read V S F <<< "$spec"; F=${F//,/ }
  ( nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v $F $D/mk/$S.cu -o /tmp/mk_$V > $O/build_$V.log 2>&1; echo "build $V rc=$? $(grep -A2 mk_step $O/build_$V.log | grep -oE 'Used [0-9]+ registers')" ) & done; wait; t
for spec in $VARS; do IFS=: read V S F <<< "$spec"; timeout 60 /tmp/mk_$V > $O/mk_$V.log 2>&1; echo "mk $V rc=$?"; grep -vE "^rep [123]|^device|^schedule" $O/mk_$V.log; t; done
true
