#!/usr/bin/env bash
# helper G (branch gemm), session 4, call 1: the GEMM path through cuBLASLt with per-shape autotuning
# (TRTFORGE_GEMM=lt) vs cublasGemmEx (=cublas), f16 GEMM outputs (TRTFORGE_GEMM_F16OUT=1), and
# cuda-check (incl. the synthetic FP8 GEMM self-test) with the new path on. One lease.
set -uo pipefail
C=.carry/gemm; B=$C/trtforge; O=${OUT:-/tmp/out}; G=/tmp/g; mkdir -p $O $G
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/run1.sh $G/; tar czf $O/gemm_run1.tgz -C /tmp g; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; $B --version; cat $C/commit.txt; } > $G/env.txt 2>&1; cat $G/env.txt
M="--model preset:tinyllama-1.1b --input-lens 512 --output-len 128"
echo "== bench TRTFORGE_GEMM=lt"
TRTFORGE_GEMM=lt TRTFORGE_GEMM_LOG=1 timeout 75 $B bench $M --precisions fp16,int8,int4 --batch-sizes 1,8,64 --json $G/lt.json > $G/lt.log 2>&1; echo rc=$?
grep -E "eager|^\|" $G/lt.log; t
echo "== bench TRTFORGE_GEMM=cublas"
TRTFORGE_GEMM=cublas timeout 50 $B bench $M --precisions fp16,int8 --batch-sizes 1,8,64 --json $G/cublas.json > $G/cublas.log 2>&1; echo rc=$?
grep -E "eager|^\|" $G/cublas.log; t
echo "== bench TRTFORGE_GEMM=lt TRTFORGE_GEMM_F16OUT=1"
TRTFORGE_GEMM=lt TRTFORGE_GEMM_F16OUT=1 TRTFORGE_GEMM_LOG=1 timeout 30 $B bench $M --precisions fp16 --batch-sizes 1,64 --json $G/lt16.json > $G/lt16.log 2>&1; echo rc=$?
grep -E "eager|^\|" $G/lt16.log; t
left=$(( 225 - ($(date +%s) - T0) )); [ $left -lt 30 ] && left=30
echo "== cuda-check --tiny --tinyllama, TRTFORGE_GEMM=lt TRTFORGE_GEMM_F16OUT=1 (timeout $left)"
TRTFORGE_GEMM=lt TRTFORGE_GEMM_F16OUT=1 timeout $left $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $G/check.log 2>&1; echo rc=$?
grep -E "FAIL|passed|gemm|fp8" $G/check.log; t
