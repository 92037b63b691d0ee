#!/usr/bin/env bash
# Session 31 call 16: after call 15 (the per-chunk profiling build races: thread 0's timing branch left warp 0 diverged at
# mma.sync.aligned), mk9.cu has a __syncwarp() after each chunk's wait. The v9 configuration with PROF=2 (three runs, the
# determinism line each) and the default (best) build's time again.
set -uo pipefail
D=docs/benchmarks/2026-12-03-h200-session31; O=/tmp/s31p; mkdir -p $O; export PATH=/usr/local/cuda/bin:$PATH
trap 'sha256sum $D/mk9/mk9.cu > $O/sources.sha256; tar czf ${OUT:-/tmp}/s31p.tgz -C /tmp s31p' EXIT
V9="-DDGU=0 -DDHEAD=0 -DPOLL1=0 -DGRAB_AT=-1 -DATTACQ=0 -DNSLOT=11 -DACH=16"
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -DPROF=2 $V9 $D/mk9/mk9.cu -o /tmp/mk_p2 > $O/build_p2.log 2>&1 &
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 $D/mk9/mk9.cu -o /tmp/mk_def > $O/build_def.log 2>&1 & wait
for i in 1 2 3; do timeout 60 /tmp/mk_p2 > $O/p2_$i.log 2>&1; echo "v9 PROF=2 $i rc=$? $(grep -E 'step 1 logits|determinism' $O/p2_$i.log | cut -c1-80 | tr '\n' ' ')"; done
for i in 1 2; do timeout 60 /tmp/mk_def > $O/def_$i.log 2>&1; echo "default $i rc=$? $(grep -E 'determinism|greedy|median' $O/def_$i.log | cut -c1-80 | tr '\n' ' ')"; done
