#!/usr/bin/env bash
# Prepared for session 16 (not run in session 15: device budget spent): the engine's tcg4 v3 kernel body
# (src/backend/cuda/kernels_tcg4.cu, verbatim, with engine_stub.cuh) timed in this harness beside the prototype's
# same-structure kernel, same weights / tensor map / graphs. Fast here -> the engine's environment (launch shape,
# neighbours, S) is what costs; slow here -> the kernel code.
set -uo pipefail
D=docs/benchmarks/2026-12-01-h200-session15/gemm_ws; O=${OUT:-/tmp}/gemm_ws4; mkdir -p $O
export PATH=/usr/local/cuda/bin:$PATH
cp src/backend/cuda/kernels_tcg4.cu /tmp/eng_tcg4.cuh
nvcc -O3 -DENGINE -I$D -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v $D/ws.cu -lcublas -lcuda -o /tmp/ws > $O/build.log 2>&1; echo "nvcc rc=$?"; grep -E "error|C7520" $O/build.log | head -20
XT=1 ONLY="f16 nc1 kc64 nst8 S1 tma|f16 nc1 kc64 nst8 S2 tma|f16 nc2 kc64 nst6 S1 tma" timeout 150 /tmp/ws 2>&1 | tee $O/run.log
