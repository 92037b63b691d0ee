#!/usr/bin/env bash
# Session 37 call 4: what bounds the quantized 64-row GEMM prototype (wq/wq.cu, call 3's source + timing flags):
# the same configs (no multicast) with the x copies left out (NOX=1: the weight stream alone) and with the weight
# copies left out (NOW=1: the x stream alone). Timing only: those runs' results are wrong by construction (FAIL).
set -uo pipefail
D=docs/benchmarks/2026-12-04-h200-session37/wq; O=/tmp/c4; mkdir -p $O
trap "tar czf $OUT/c4.tgz -C /tmp c4" EXIT
export PATH=/usr/local/cuda/bin:$PATH
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; } | tee $O/env.txt
S=$(date +%s)
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v $D/wq.cu -lcublas -lcuda -o /tmp/wq > $O/build.log 2>&1; echo "nvcc rc=$? t=$(( $(date +%s) - S ))"
for m in base NOX NOW; do
  if [ $m = base ]; then ONLY=mc1 timeout 120 /tmp/wq > $O/run_$m.log 2>&1; else env $m=1 ONLY=mc1 timeout 120 /tmp/wq > $O/run_$m.log 2>&1; fi
  echo "== $m rc=$? t=$(( $(date +%s) - S ))"; grep -E "best|layer" $O/run_$m.log
done
