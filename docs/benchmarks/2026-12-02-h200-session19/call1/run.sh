#!/usr/bin/env bash
# Session 19, call 1: the ceiling of a W8A8 fp8 decode path at 16-64 rows (issue #15 fp8 bs64 >= 1.3x fp16):
# (1) torch's fp16 / fp8 GEMMs for one TinyLlama step from a CUDA graph (fp8_gemm_probe.py);
# (2) the engine's fp8 rows: default (W8A16 on a load-time f16 copy) and TRTFORGE_FP8_GEMM=1 (W8A8 through
#     cuBLASLt, session 5's opt-in path), each with cuBLASLt's per-shape tuning lines (TRTFORGE_GEMM_LOG=1) and the
#     eager per-kind decode profile the bench log prints; fp16 bs64 as the control.
set -uo pipefail
C=.carry/s18n; B=$C/trtforge; D=docs/benchmarks/2026-12-02-h200-session19; O=/tmp/s19c1; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $D/call1/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s19c1.tgz -C /tmp s19c1; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
timeout 150 python3 $D/fp8_gemm_probe.py $O/probe.json > $O/probe.log 2>&1; echo "probe rc=$?"; cat $O/probe.log | cut -c1-200; t
nb() { local n=$1; shift; env "${E[@]}" timeout 120 $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --isolate never --json $O/$n.json "$@" > $O/$n.log 2>&1
  echo "$n rc=$?"; grep -E "^\| (fp|int)|rror|arning" $O/$n.log | cut -c1-140; t; }
E=(TRTFORGE_GEMM_LOG=1 TRTFORGE_GEMM_TUNE_MS=20000); nb fp8_w8a16 --precisions fp8 --batch-sizes 16,32,64
E=(TRTFORGE_GEMM_LOG=1 TRTFORGE_GEMM_TUNE_MS=20000 TRTFORGE_FP8_GEMM=1); nb fp8_w8a8 --precisions fp8 --batch-sizes 16,32,64
E=(X=1); nb fp16 --precisions fp16 --batch-sizes 64
grep -hE "gemm-lt" $O/fp8_w8a16.log $O/fp8_w8a8.log | cut -c1-230
grep -hE "eager decode step" $O/fp8_w8a16.log $O/fp8_w8a8.log $O/fp16.log | cut -c1-400
