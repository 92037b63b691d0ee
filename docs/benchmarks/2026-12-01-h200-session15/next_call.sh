#!/usr/bin/env bash
# Prepared in session 15 for the next lease (not run): (1) the engine's tcg4 v3 body in the prototype harness
# (gemm_ws/run4.sh), (2) the engine at 64 rows with the K-slice count forced (TRTFORGE_TCG4_S) beside the default.
# Needs a stripped trtforge and its kernel cache in $C (build here, precompile with TRTFORGE_CUDA_PRECOMPILE=sm_90a
# for the tcg4 module; the default module's cubins from an earlier carry).
set -uo pipefail
C=${C:-.carry/next}; B=$C/trtforge; O=${OUT:-/tmp}/next; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
bash docs/benchmarks/2026-12-01-h200-session15/gemm_ws/run4.sh 2>&1 | tail -30
bn() { local n=$1; shift
  env "${E[@]}" timeout 60 $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --precisions fp16 --json $O/$n.json "$@" > $O/$n.log 2>&1
  echo "$n rc=$?"; grep -E "^\| fp16" $O/$n.log; }
E=(); bn def --batch-sizes 64
for s in 1 2 4 8; do E=(TRTFORGE_TCG=4 TRTFORGE_TCG4_S=$s); bn v3_s$s --batch-sizes 64; done
