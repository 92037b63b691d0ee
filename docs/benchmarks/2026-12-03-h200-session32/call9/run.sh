#!/usr/bin/env bash
# Session 32 call 9: the final alternation. mk10's default now has the race fix (PFX=4); the racy build (PFX=0) for
# reference; the engine's fp16 bs1 default (.carry/s30a: session 30's build; src/ unchanged since) between them.
export O=/tmp/c9 MK_DET=50 VARS="fixed:|racy:-DPFX=0|fixed_p2:-DPROF=2 -DPOLL1=0"
bash docs/benchmarks/2026-12-03-h200-session32/call3/run.sh
C=.carry/s30a; export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/K/* /tmp/kc/ 2>/dev/null
for i in 1 2; do timeout 90 $C/trtforge bench --isolate never --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 \
  --model preset:tinyllama-1.1b --json /tmp/c9/engine$i.json > /tmp/c9/engine$i.log 2>&1; echo "engine$i rc=$?"; grep -E "^\| fp16" /tmp/c9/engine$i.log
  MK_DET=3 /tmp/mk_fixed > /tmp/c9/mk_fixed_c$i.log 2>&1; echo "fixed_c$i $(grep -E 'bitwise|median' /tmp/c9/mk_fixed_c$i.log | tr '\n' ' ')"; done
tar czf ${OUT:-/tmp}/c9.tgz -C /tmp c9
