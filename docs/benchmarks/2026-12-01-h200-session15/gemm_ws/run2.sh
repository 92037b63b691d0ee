#!/usr/bin/env bash
# Call 2: x stream cost (NOX=1: the producer skips the x copies; timing only) and ncu of chosen configs.
set -uo pipefail
D=docs/benchmarks/2026-12-01-h200-session15/gemm_ws; O=${OUT:-/tmp}/gemm_ws2; mkdir -p $O
export PATH=/usr/local/cuda/bin:$PATH
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v $D/ws.cu -lcublas -lcuda -o /tmp/ws > $O/build.log 2>&1; echo "nvcc rc=$?"
NOX=1 ONLY="S1" timeout 100 /tmp/ws 2>&1 | grep -E "cublas|nst8 S1|nc1 kc128 nst4 S1|nc2 kc128 nst4 S1|nc2 kc64 nst6 S1|nc1 kc256|best" > $O/nox.log; cat $O/nox.log
PROFILE=1 ONLY="${PONLY:-fp8 nc1 kc128 nst8 S1|f16 nc2 kc128 nst4 S4}" timeout 200 ncu --clock-control none -k regex:"wsg|nvjet|gemm|sm90" --section SpeedOfLight --section Occupancy --section WarpStateStats --section LaunchStats --section MemoryWorkloadAnalysis --section SchedulerStats /tmp/ws > $O/ncu.log 2>&1; echo "ncu rc=$?"
grep -E "wsg|nvjet|Duration|DRAM Throughput|L2 Cache Throughput|L1/TEX Cache Throughput|Achieved Occupancy|Registers Per|Grid Size|Block Size|Warp Cycles Per Issued|Memory Throughput|Issued Warp|No Eligible|Max Bandwidth|Mem Busy" $O/ncu.log | head -150
