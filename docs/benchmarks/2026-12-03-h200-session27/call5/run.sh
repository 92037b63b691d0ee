#!/usr/bin/env bash
# Session 27 call 5: probe v5 (fa_o/fa_o4.cu as of this call's commit) — the fused attention + o kernel under PDL after
# the qkv-like producer with clusters of 16 and of 8 (score tiles in a loop), the K / V staging waited for before
# (late 0) or after (late 1) griddepcontrol.wait; and clusters of 8 standalone. No carry.
set -uo pipefail
D=docs/benchmarks/2026-12-03-h200-session27; O=${OUT:-/tmp}/c5; mkdir -p $O
export PATH=/usr/local/cuda/bin:$PATH
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; } > $O/env.txt 2>&1; cat $O/env.txt
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v $D/fa_o/fa_o4.cu -o /tmp/fa_o5 > $O/fa_o5_build.log 2>&1; echo "nvcc rc=$?"
grep -E "error|registers|spill" $O/fa_o5_build.log | head -6
timeout 90 /tmp/fa_o5 > $O/fa_o5.log 2>&1; echo "fa_o5 rc=$?"; cat $O/fa_o5.log; true
