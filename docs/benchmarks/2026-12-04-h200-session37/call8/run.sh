#!/usr/bin/env bash
# Session 37 call 8: the prototype (wq/wq.cu) in a LAYER chain — 22 × (qkv, o, gate/up, down), each format's best
# config per shape, with and without a glue kernel between the GEMMs (PDL-launched, waits for the GEMM, reads its y,
# writes the next GEMM's x) — beside cuBLAS f16 the same way. Session 28 found that same-GEMM chains (calls 2-7)
# overstate what a GEMM of ours gives inside the engine, where other kernels sit between the GEMMs.
set -uo pipefail
D=docs/benchmarks/2026-12-04-h200-session37/wq; O=/tmp/c8; mkdir -p $O
trap "tar czf $OUT/c8.tgz -C /tmp c8" EXIT
export PATH=/usr/local/cuda/bin:$PATH
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; } | tee $O/env.txt
S=$(date +%s)
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v $D/wq.cu -lcublas -lcuda -o /tmp/wq > $O/build.log 2>&1; echo "nvcc rc=$? t=$(( $(date +%s) - S ))"
timeout 150 /tmp/wq > $O/run.log 2>&1; echo "== rc=$? t=$(( $(date +%s) - S ))"; grep -E "^a layer|chain|correct" $O/run.log
