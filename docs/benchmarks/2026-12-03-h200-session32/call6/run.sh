#!/usr/bin/env bash
# Session 32 call 6: the race's fix (PFX=1: fence.proxy.async before a consumer warp frees a ring slot; call 5: the
# racing build 20 / 20 with it) checked with 50 repeats in the racing builds, and its cost on the best configuration,
# alternated, beside the engine's fp16 bs1 row (.carry/s30a: session 30's build; src/ unchanged since).
V9="-DDGU=0 -DDHEAD=0 -DPOLL1=0 -DGRAB_AT=-1 -DATTACQ=0 -DNSLOT=11 -DACH=16"
export O=/tmp/c6 MK_DET=20 VARS="r_pfx1:$V9 -DPROF=2 -DPFX=1|b0_pfx1:-DPROF=2 -DPOLL1=0 -DPFX=1|best:|fix:-DPFX=1|best_b:|fix_b:-DPFX=1|fixtr:-DPFX=1 -DTRACE=1"
bash docs/benchmarks/2026-12-03-h200-session32/call3/run.sh
C=.carry/s30a; export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/K/* /tmp/kc/ 2>/dev/null
for i in 1 2; do timeout 90 $C/trtforge bench --isolate never --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 \
  --model preset:tinyllama-1.1b --json /tmp/c6/engine$i.json > /tmp/c6/engine$i.log 2>&1; echo "engine$i rc=$?"; grep -E "^\| fp16" /tmp/c6/engine$i.log
  /tmp/mk_fix > /tmp/c6/mk_fix_c$i.log 2>&1; echo "fix_c$i $(grep -E 'bitwise|median' /tmp/c6/mk_fix_c$i.log | tr '\n' ' ')"; done
tar czf ${OUT:-/tmp}/c6.tgz -C /tmp c6
