#!/usr/bin/env bash
# Session 37 call 5: the quantized 64-row GEMM prototype (wq/wq.cu) with shallower rings (NST 2, 3: 41 / 61 KB a CTA,
# so 3–5 CTAs, i.e. consumer warpgroups, fit an SM and one's conversion overlaps another's MMAs; call 4 showed the
# RS consumer, not the x or weight streams, bounds it). Then the best configs with the x / weight copies left out.
set -uo pipefail
D=docs/benchmarks/2026-12-04-h200-session37/wq; O=/tmp/c5; mkdir -p $O
trap "tar czf $OUT/c5.tgz -C /tmp c5" EXIT
export PATH=/usr/local/cuda/bin:$PATH
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; } | tee $O/env.txt
S=$(date +%s)
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v $D/wq.cu -lcublas -lcuda -o /tmp/wq > $O/build.log 2>&1; echo "nvcc rc=$? t=$(( $(date +%s) - S ))"
ONLY=mc1 timeout 150 /tmp/wq > $O/run_base.log 2>&1; echo "== base rc=$? t=$(( $(date +%s) - S ))"; grep -E "best|layer|correct" $O/run_base.log
for m in NOX NOW; do
  env $m=1 ONLY="nst3 ov0 mc1" timeout 100 /tmp/wq > $O/run_${m}_nst3.log 2>&1; echo "== $m nst3 rc=$? t=$(( $(date +%s) - S ))"; grep -E "layer" $O/run_${m}_nst3.log
done
