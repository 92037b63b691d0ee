#!/usr/bin/env bash
# Session 27 call 3: the fused attention + o prologue probe v2 (fa_o/fa_o2.cu: phase stamps; P·V with 4 accumulator
# chains; one block an SM) — where call 2's 5.8 µs a block (9.4 µs to the last block) go. No carry.
set -uo pipefail
D=docs/benchmarks/2026-12-03-h200-session27; O=${OUT:-/tmp}/c3; mkdir -p $O
export PATH=/usr/local/cuda/bin:$PATH
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; } > $O/env.txt 2>&1; cat $O/env.txt
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v $D/fa_o/fa_o2.cu -o /tmp/fa_o2 > $O/fa_o2_build.log 2>&1; echo "nvcc rc=$?"
grep -E "error|registers|spill" $O/fa_o2_build.log | head -12
timeout 90 /tmp/fa_o2 > $O/fa_o2.log 2>&1; echo "fa_o2 rc=$?"; cat $O/fa_o2.log
cp $D/call3/run.sh $O/ 2>/dev/null; true
