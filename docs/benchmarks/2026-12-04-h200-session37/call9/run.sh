#!/usr/bin/env bash
# Session 37 call 9: the engine-shaped kernel (wq/wqe.cu): x row-major by TMA (SW128, rows >= T zero-filled), f32 out
# written or accumulated, T <= 64; checked at T = 64 and T = 40 accumulated; same-GEMM and layer chains (with glue).
set -uo pipefail
D=docs/benchmarks/2026-12-04-h200-session37/wq; O=/tmp/c9; mkdir -p $O
trap "tar czf $OUT/c9.tgz -C /tmp c9" EXIT
export PATH=/usr/local/cuda/bin:$PATH
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; } | tee $O/env.txt
S=$(date +%s)
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v $D/wqe.cu -lcublas -lcuda -o /tmp/wqe > $O/build.log 2>&1; echo "nvcc rc=$? t=$(( $(date +%s) - S ))"; grep -m3 error $O/build.log
timeout 200 /tmp/wqe > $O/run.log 2>&1; echo "== rc=$? t=$(( $(date +%s) - S ))"; grep -E "cublas|best|^a layer|chain|correct|FAIL" $O/run.log | head -60
