#!/usr/bin/env bash
# Session 18, call 2: decode GEMMs of 9-64 rows through our cuBLASLt plans (TRTFORGE_GEMM=lt) against the default
# (cublasGemmEx), one process per row, alternating; fp16 at bs 16/32/64, int8 / fp8 / int4 at 64.
set -uo pipefail
N=.carry/s18a/trtforge; O=/tmp/s18c2; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp docs/benchmarks/2026-12-02-h200-session18/call2/run.sh $O/; tar czf ${OUT:-/tmp}/s18c2.tgz -C /tmp s18c2; }
trap fin EXIT
nb() { local n=$1; shift; env "${E[@]}" timeout 120 $N bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1
  echo "$n rc=$?"; grep -E "^\| (fp|int)|rror" $O/$n.log | cut -c1-140; t; }
for r in 1 2; do
  E=(X=1); nb fp16_def_$r --precisions fp16 --batch-sizes 16,32,64
  E=(TRTFORGE_GEMM=lt); nb fp16_lt_$r --precisions fp16 --batch-sizes 16,32,64
done
for p in int8 fp8 int4; do
  E=(X=1); nb ${p}_def --precisions $p --batch-sizes 64
  E=(TRTFORGE_GEMM=lt); nb ${p}_lt --precisions $p --batch-sizes 64
done
