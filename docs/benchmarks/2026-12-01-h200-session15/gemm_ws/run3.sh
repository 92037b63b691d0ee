#!/usr/bin/env bash
# Call 7: x by TMA (2-D tensor map over row-major x, 128-byte swizzle; the engine's tcg4 v2 path) vs x packed + 1-D bulk
# copies, same kernel otherwise (XT=1 runs both for the f16 configs).
set -uo pipefail
D=docs/benchmarks/2026-12-01-h200-session15/gemm_ws; O=${OUT:-/tmp}/gemm_ws3; mkdir -p $O
export PATH=/usr/local/cuda/bin:$PATH
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v $D/ws.cu -lcublas -lcuda -o /tmp/ws > $O/build.log 2>&1; echo "nvcc rc=$?"; grep -E "error" $O/build.log | head -20
XT=1 ONLY="f16 nc1 kc64 nst8 S1|f16 nc1 kc128 nst6 S1|f16 nc1 kc64 nst8 S2|f16 nc2 kc64 nst6 S1" timeout 100 /tmp/ws 2>&1 | tee $O/run.log
