#!/usr/bin/env bash
# Session 30 call 2: megakernel probe v2 (no per-thread fences: thread 0 fences once a run; one barrier a tile) with the
# per-block profile build (PROF=1), and the NOWAIT ceiling. No carry.
set -uo pipefail
D=docs/benchmarks/2026-12-03-h200-session30; O=/tmp/s30b; mkdir -p $O
export PATH=/usr/local/cuda/bin:$PATH
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { git rev-parse HEAD > $O/commit.txt 2>/dev/null; tar czf ${OUT:-/tmp}/s30b.tgz -C /tmp s30b; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; } > $O/env.txt 2>&1; cat $O/env.txt
bld() { nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v "$@" > $O/build_$V.log 2>&1; echo "build $V rc=$?"; grep -A2 "mk_step" $O/build_$V.log | grep -E "registers" ; }
for spec in "def:" "prof:-DPROF=1" "nowait:-DNOWAIT=1" "nwprof:-DNOWAIT=1 -DPROF=1" ${EXTRA:-}; do V=${spec%%:*}; F=${spec#*:}; V=$V bld $F $D/mk/mk.cu -o /tmp/mk_$V & done; wait; t
for spec in "def:" "prof:" "nowait:" "nwprof:" ${EXTRA:-}; do V=${spec%%:*}; timeout 60 /tmp/mk_$V > $O/mk_$V.log 2>&1; echo "mk $V rc=$?"; grep -vE "^rep [123]" $O/mk_$V.log; t; done
true
