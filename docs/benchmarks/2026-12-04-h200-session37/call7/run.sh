#!/usr/bin/env bash
# Session 37 call 7: the prototype (wq/wq.cu) with a W8A8 path, fp8a8 (#15: E4M3 weights AND activations, both from
# shared memory by wgmma m64n64k32 e4m3 — no conversion, x half the bytes), beside the W8A16 / W4A16 paths of
# calls 2-6; then fp8a8 with the x / weight copies left out.
set -uo pipefail
D=docs/benchmarks/2026-12-04-h200-session37/wq; O=/tmp/c7; mkdir -p $O
trap "tar czf $OUT/c7.tgz -C /tmp c7" EXIT
export PATH=/usr/local/cuda/bin:$PATH
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; } | tee $O/env.txt
S=$(date +%s)
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v $D/wq.cu -lcublas -lcuda -o /tmp/wq > $O/build.log 2>&1; echo "nvcc rc=$? t=$(( $(date +%s) - S ))"
timeout 150 /tmp/wq > $O/run_base.log 2>&1; echo "== base rc=$? t=$(( $(date +%s) - S ))"; grep -E "best|layer|correct" $O/run_base.log
for m in NOX NOW; do
  env $m=1 ONLY="fp8a8" timeout 100 /tmp/wq > $O/run_${m}_f8a8.log 2>&1; echo "== $m fp8a8 rc=$? t=$(( $(date +%s) - S ))"; grep -E "layer" $O/run_${m}_f8a8.log
done
