#!/usr/bin/env bash
# Session 37 call 3: the quantized 64-row GEMM prototype (wq/wq.cu) with x multicast over clusters of MC row tiles (MC 1, 2, 4) against cublasGemmEx f16, CUDA graphs of 22 launches.
set -uo pipefail
D=docs/benchmarks/2026-12-04-h200-session37/wq; O=/tmp/c3; mkdir -p $O
trap "tar czf $OUT/c3.tgz -C /tmp c3" EXIT
export PATH=/usr/local/cuda/bin:$PATH
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; nvcc --version | tail -2; } | tee $O/env.txt
S=$(date +%s)
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v $D/wq.cu -lcublas -lcuda -o /tmp/wq > $O/build.log 2>&1; echo "nvcc rc=$? t=$(( $(date +%s) - S ))"; grep -E "error" $O/build.log | head -5
timeout 240 /tmp/wq > $O/run.log 2>&1; echo "wq rc=$? t=$(( $(date +%s) - S ))"
grep -E "cublas|best|layer|correct|FAIL" $O/run.log | head -60
if [ -n "${NCU:-}" ]; then
  ONLY="$NCU" timeout 100 ncu --clock-control none -k regex:"wq|nvjet|gemm|sm90" -c 4 --section SpeedOfLight --section Occupancy --section WarpStateStats /tmp/wq > $O/ncu.log 2>&1; echo "ncu rc=$?"
  grep -E "wq|Duration|DRAM Throughput|Achieved Occupancy|Warp Cycles Per Issued|Registers" $O/ncu.log | head -40
fi
