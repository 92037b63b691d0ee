#!/usr/bin/env bash
# Session 14: the 64-row decode GEMM prototype against cublasGemmEx (same process, CUDA graphs of 22 launches).
set -uo pipefail
D=docs/benchmarks/2026-12-01-h200-session14/gemm_proto; O=${OUT:-/tmp}/gemm_proto; mkdir -p $O
export PATH=/usr/local/cuda/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee $O/env.txt; date -u | tee -a $O/env.txt
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v $D/skinny.cu -lcublas -o /tmp/skinny > $O/build.log 2>&1; echo "nvcc rc=$?"; grep -E "error|Used" $O/build.log | head -20
timeout 150 /tmp/skinny 2>&1 | tee $O/run.log
# the attn check list again (call 2 cut it at 70 s after 5 passes while its tiny modules compiled on the device)
if [ -n "${ATTN_CHECK:-}" ] && [ -x .carry/s14b/trtforge ]; then
  export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc
  T0=$(date +%s); TRTFORGE_CHECKS=attn timeout 200 .carry/s14b/trtforge cuda-check --tiny tests/fixtures/tiny_llama > $O/check_attn.log 2>&1; echo "check attn rc=$? $(( $(date +%s) - T0 )) s"
  grep -E "FAIL|passed" $O/check_attn.log | tail -3; grep -c PASS $O/check_attn.log
fi
if [ -n "${NCU:-}" ]; then
  PROFILE=1 timeout 240 ncu --clock-control none -k regex:'skinny|gemm|sm90|Kernel' --section SpeedOfLight --section Occupancy --section WarpStateStats --section LaunchStats /tmp/skinny > $O/ncu.log 2>&1; echo "ncu rc=$?"
  grep -E "skinny|gemm|Kernel|Duration|DRAM Throughput|Achieved Occupancy|Stall|Registers|Grid Size|Block Size|Warp Cycles Per Issued" $O/ncu.log | head -150
fi
