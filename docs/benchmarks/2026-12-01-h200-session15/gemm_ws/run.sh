#!/usr/bin/env bash
# Session 15: the warp-specialized 64-row decode GEMM prototype (ws.cu) against cublasGemmEx, CUDA graphs of 22 launches.
set -uo pipefail
D=docs/benchmarks/2026-12-01-h200-session15/gemm_ws; O=${OUT:-/tmp}/gemm_ws; mkdir -p $O
export PATH=/usr/local/cuda/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee $O/env.txt; date -u | tee -a $O/env.txt
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v $D/ws.cu -lcublas -lcuda -o /tmp/ws > $O/build.log 2>&1; echo "nvcc rc=$?"; grep -E "error|Perf|warn" $O/build.log | head -20
timeout ${T:-200} /tmp/ws 2>&1 | tee $O/run.log
if [ -n "${NCU:-}" ]; then
  timeout 240 ncu --clock-control none -k regex:"${NCU}" --section SpeedOfLight --section Occupancy --section WarpStateStats --section LaunchStats --section MemoryWorkloadAnalysis /tmp/ws > $O/ncu.log 2>&1; echo "ncu rc=$?"
  grep -E "wsg|nvjet|Duration|DRAM Throughput|L2 Cache Throughput|Achieved Occupancy|Registers|Grid Size|Block Size|Warp Cycles Per Issued|Memory Throughput" $O/ncu.log | head -120
fi
