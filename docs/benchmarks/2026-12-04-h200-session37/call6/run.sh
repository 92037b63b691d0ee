#!/usr/bin/env bash
# Session 37 call 6: the quantized 64-row GEMM prototype (wq/wq.cu) with KW = 2 warpgroups per row tile taking the
# stages in turn (own accumulators, summed at the end: one converts while the other's MMAs run — call 4 showed the
# RS consumer bounds it, and ptxas serializes in-warpgroup overlap, C7513), beside KW = 1; then the best with the
# x / weight copies left out.
set -uo pipefail
D=docs/benchmarks/2026-12-04-h200-session37/wq; O=/tmp/c6; mkdir -p $O
trap "tar czf $OUT/c6.tgz -C /tmp c6" EXIT
export PATH=/usr/local/cuda/bin:$PATH
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; } | tee $O/env.txt
S=$(date +%s)
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v $D/wq.cu -lcublas -lcuda -o /tmp/wq > $O/build.log 2>&1; echo "nvcc rc=$? t=$(( $(date +%s) - S ))"
timeout 150 /tmp/wq > $O/run_base.log 2>&1; echo "== base rc=$? t=$(( $(date +%s) - S ))"; grep -E "best|layer|correct" $O/run_base.log
for m in NOX NOW; do
  env $m=1 ONLY="kw2" timeout 100 /tmp/wq > $O/run_${m}_kw2.log 2>&1; echo "== $m kw2 rc=$? t=$(( $(date +%s) - S ))"; grep -E "layer" $O/run_${m}_kw2.log
done
