#!/usr/bin/env bash
# helper K, call 2: tcg with the batched split-K tail (TRTFORGE_TCG=1) vs cuBLAS (0), one lease.
set -uo pipefail
C=.carry/kern; B=$C/trtforge; O=${OUT:-/tmp/out}; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; $B --version; } > $O/env.txt 2>&1; cat $O/env.txt
M="--model preset:tinyllama-1.1b --input-lens 512 --output-len 128"
echo "== cuda-check --tiny, TCG=1 KSMAX=32 (split-K on the tiny models)"; TRTFORGE_TCG=1 TRTFORGE_TCG_KSMAX=32 timeout 60 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_tcg_split.log 2>&1; grep -E "FAIL|passed" $O/check_tcg_split.log; t
echo "== cuda-check --tiny, TCG=1"; TRTFORGE_TCG=1 timeout 60 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_tcg.log 2>&1; grep -E "FAIL|passed" $O/check_tcg.log; t
echo "== bench TCG=1"; TRTFORGE_TCG=1 timeout 60 $B bench $M --precisions fp16,int8,int4 --batch-sizes 64 --json $O/tcg.json > $O/tcg.log 2>&1; grep -E "eager|^\|" $O/tcg.log; t
echo "== bench TCG=0 (cuBLAS)"; timeout 60 $B bench $M --precisions fp16,int8,int4 --batch-sizes 64 --json $O/cublas.json > $O/cublas.log 2>&1; grep -E "eager|^\|" $O/cublas.log; t
echo "== bench TCG=1 KSMIN=256"; TRTFORGE_TCG=1 TRTFORGE_TCG_KSMIN=256 timeout 30 $B bench $M --precisions fp16 --batch-sizes 64 > $O/ks256.log 2>&1; grep -E "eager|^\| fp16" $O/ks256.log; t
