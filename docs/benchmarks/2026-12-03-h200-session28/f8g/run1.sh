#!/usr/bin/env bash
# Session 28 call 1: the W8A8 FP8 wgmma prototype (f8g.cu) against cublasGemmEx f16, CUDA graphs of 22 launches.
set -uo pipefail
D=docs/benchmarks/2026-12-03-h200-session28/f8g; O=${OUT:-/tmp/out}; mkdir -p $O
export PATH=/usr/local/cuda/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee $O/env.txt; date -u | tee -a $O/env.txt
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v $D/f8g.cu -lcublas -lcuda -o /tmp/f8g > $O/build.log 2>&1; echo "nvcc rc=$?"
grep -E "error|C75" $O/build.log | head
cuobjdump -sass /tmp/f8g | grep -c QGMMA
timeout 150 /tmp/f8g 2>&1 | tee $O/run64.log
ROWS=32 timeout 100 /tmp/f8g 2>&1 | grep -E "best|chain|WRONG|cublas" | tee $O/run32.log
