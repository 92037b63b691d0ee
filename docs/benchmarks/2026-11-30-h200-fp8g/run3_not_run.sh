#!/usr/bin/env bash
# helper F (fp8g), for a later lease (not run): the TinyLlama-shape fp8 checks under the f16-input
# twin rule, with the FP8 GEMM off and on (~150 s each on a warm machine), then the fp8kv checks.
# Results: $OUT/F3.tgz.
set -uo pipefail
C=.carry/F; B=$C/trtforge; O=/tmp/F3; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
fin() { cp $C/run3.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/F3.tgz -C /tmp F3; }
trap fin EXIT
cat $C/commit.txt
TRTFORGE_FP8_GEMM=0 TRTFORGE_CHECKS=fp8tl timeout 150 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/fp8tl_off.log 2>&1; echo rc=$?; grep -E "^(PASS|FAIL)" $O/fp8tl_off.log | cut -c1-300
TRTFORGE_FP8_GEMM=1 TRTFORGE_CHECKS=fp8tl timeout 150 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/fp8tl_on.log 2>&1; echo rc=$?; grep -E "^(PASS|FAIL)" $O/fp8tl_on.log | cut -c1-300
TRTFORGE_FP8_GEMM=1 TRTFORGE_GEMM_SELFTEST=1 TRTFORGE_GEMM_TUNE_MS=30000 TRTFORGE_CHECKS=fp8kv timeout 200 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/fp8kv_on.log 2>&1; echo rc=$?; grep -E "^(PASS|FAIL)|gemm " $O/fp8kv_on.log | cut -c1-300
