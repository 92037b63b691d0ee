#!/usr/bin/env bash
# Session 27 call 4: the fused attention + o prologue probe v3 (fa_o/fa_o3.cu: the K / V staging waited for only after the
# release ("late"), L = 576 / 640 / 1024, tensor-core scores and P·V), then probe v4 (fa_o/fa_o4.cu: under PDL after a
# qkv-like producer grid). No carry.
set -uo pipefail
D=docs/benchmarks/2026-12-03-h200-session27; O=${OUT:-/tmp}/c4; mkdir -p $O
export PATH=/usr/local/cuda/bin:$PATH
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; } > $O/env.txt 2>&1; cat $O/env.txt
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v $D/fa_o/fa_o3.cu -o /tmp/fa_o3 > $O/fa_o3_build.log 2>&1; echo "nvcc rc=$?"
grep -E "error|registers|spill" $O/fa_o3_build.log | head -12
timeout 90 /tmp/fa_o3 > $O/fa_o3.log 2>&1; echo "fa_o3 rc=$?"; cat $O/fa_o3.log
cp $D/call4/run.sh $O/ 2>/dev/null
# Then probe v4 (fa_o/fa_o4.cu): the fused kernel under PDL after a qkv-like producer grid, 22 pairs back to back.
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v $D/fa_o/fa_o4.cu -o /tmp/fa_o4 > $O/fa_o4_build.log 2>&1; echo "nvcc v4 rc=$?"
grep -E "error|registers|spill" $O/fa_o4_build.log | head -6
timeout 90 /tmp/fa_o4 > $O/fa_o4.log 2>&1; echo "fa_o4 rc=$?"; cat $O/fa_o4.log; true
