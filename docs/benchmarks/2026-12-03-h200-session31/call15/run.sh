#!/usr/bin/env bash
# Session 31 call 15: call 1's profiling build (mk9.cu at db0dee9, -DPROF=1 = per-chunk stamps) printed a logits error of
# 6.4e-3 rel where every other build prints 1.2-1.4e-3. Is it reproducible (same binary, three runs), and does today's code
# in the same configuration (v9: no tickets, no POLL1, PROF=2) show it? call15/mk9_db0dee9.cu was that commit's file,
# written before the call by `git show db0dee9:docs/benchmarks/2026-12-03-h200-session31/mk9/mk9.cu` (the device copy
# has no history) and removed afterwards as a duplicate of the history.
set -uo pipefail
D=docs/benchmarks/2026-12-03-h200-session31; O=/tmp/s31o; mkdir -p $O; export PATH=/usr/local/cuda/bin:$PATH
trap 'tar czf ${OUT:-/tmp}/s31o.tgz -C /tmp s31o' EXIT
V9="-DDGU=0 -DDHEAD=0 -DPOLL1=0 -DGRAB_AT=-1 -DATTACQ=0 -DNSLOT=11 -DACH=16"
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -DPROF=1 $D/call15/mk9_db0dee9.cu -o /tmp/mk_old > $O/build_old.log 2>&1 &
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -DPROF=2 $V9 $D/mk9/mk9.cu -o /tmp/mk_new > $O/build_new.log 2>&1 &
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 $V9 $D/mk9/mk9.cu -o /tmp/mk_new0 > $O/build_new0.log 2>&1 & wait
for i in 1 2 3; do timeout 60 /tmp/mk_old > $O/old_$i.log 2>&1; echo "old $i rc=$? $(grep -E 'step 1 logits' $O/old_$i.log | cut -c1-80)"; done
for i in 1 2; do timeout 60 /tmp/mk_new > $O/new_$i.log 2>&1; echo "new PROF=2 $i rc=$? $(grep -E 'step 1 logits|determinism' $O/new_$i.log | cut -c1-80 | tr '\n' ' ')"; done
timeout 60 /tmp/mk_new0 > $O/new0.log 2>&1; echo "new v9 rc=$? $(grep -E 'step 1 logits|determinism' $O/new0.log | cut -c1-80 | tr '\n' ' ')"
