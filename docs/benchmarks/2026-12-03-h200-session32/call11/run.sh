#!/usr/bin/env bash
# Session 32 call 11: mk11 (the race-fixed probe made engine-shaped: metadata block + mk_adv launch between steps,
# slot-indexed KV cache, RoPE tables) against mk10 and the engine's fp16 bs1 default (.carry/s30a), one call.
set -uo pipefail
D=docs/benchmarks/2026-12-03-h200-session32; O=/tmp/c11; mkdir -p $O; export PATH=/usr/local/cuda/bin:$PATH
trap 'sha256sum $D/mk10/mk10.cu $D/mk11/mk11.cu > $O/sources.sha256; tar czf ${OUT:-/tmp}/c11.tgz -C /tmp c11' EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; } > $O/env.txt 2>&1; cat $O/env.txt
( nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 $D/mk11/mk11.cu -o /tmp/mk11 > $O/build_mk11.log 2>&1 || echo "build mk11 FAILED" ) &
( nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 $D/mk10/mk10.cu -o /tmp/mk10 > $O/build_mk10.log 2>&1 || echo "build mk10 FAILED" ) &
( nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -DTRACE=1 $D/mk11/mk11.cu -o /tmp/mk11tr > $O/build_mk11tr.log 2>&1 || echo "build mk11tr FAILED" ) &
wait
s() { grep -E 'step 1 logits|bitwise|greedy|median' $1 | sed -E 's/max \|mk.*rel/rel/; s/; argmax.*//; s/weights.*//; s/ \(first.*//; s/determinism: step 1 repeated/det/' | tr '\n' ' '; }
MK_DET=50 timeout 120 /tmp/mk11 > $O/mk11_a.log 2>&1; echo "mk11_a rc=$? $(s $O/mk11_a.log)"
timeout 120 /tmp/mk10 > $O/mk10_a.log 2>&1; echo "mk10_a rc=$? $(s $O/mk10_a.log)"
C=.carry/s30a; export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/K/* /tmp/kc/ 2>/dev/null
timeout 90 $C/trtforge bench --isolate never --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 \
  --model preset:tinyllama-1.1b --json $O/engine.json > $O/engine.log 2>&1; echo "engine rc=$?"; grep -E "^\| fp16" $O/engine.log
MK_DET=3 timeout 120 /tmp/mk11 > $O/mk11_b.log 2>&1; echo "mk11_b rc=$? $(s $O/mk11_b.log)"
timeout 120 /tmp/mk10 > $O/mk10_b.log 2>&1; echo "mk10_b rc=$? $(s $O/mk10_b.log)"
timeout 120 /tmp/mk11tr > $O/mk11tr.log 2>&1; echo "mk11tr rc=$? $(s $O/mk11tr.log)"; grep "^trace" $O/mk11tr.log
