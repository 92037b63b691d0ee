#!/usr/bin/env bash
# Session 28 call 2: the engine's f8g kernels (src/backend/cuda/kernels_f8g.cu, included verbatim) beside the
# prototype's first kernel and cublasGemmEx f16, CUDA graphs of 22 launches, at 64 / 32 / 16 rows.
set -uo pipefail
D=docs/benchmarks/2026-12-03-h200-session28/f8g; O=${OUT:-/tmp/out}; mkdir -p $O
export PATH=/usr/local/cuda/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee $O/env.txt; date -u | tee -a $O/env.txt
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v $D/f8g.cu -lcublas -lcuda -o /tmp/f8g > $O/build.log 2>&1; echo "nvcc rc=$?"
grep -E "error|C75" $O/build.log | head
timeout 150 /tmp/f8g > $O/run64.log 2>&1; echo "rc=$?"; grep -E "best|chain|WRONG" $O/run64.log
ROWS=32 timeout 100 /tmp/f8g > $O/run32.log 2>&1; echo "rc=$?"; grep -E "best|chain|WRONG" $O/run32.log
ROWS=16 timeout 100 /tmp/f8g > $O/run16.log 2>&1; echo "rc=$?"; grep -E "best|chain|WRONG" $O/run16.log
grep -E "engine f8g" $O/run64.log
