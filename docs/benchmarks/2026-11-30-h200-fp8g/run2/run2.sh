#!/usr/bin/env bash
# helper F, call 2: the TinyLlama-shape fp16 + fp8-KV logits check (cut in call 1) and fp8 W8A8
# (FP8 GEMM on) logits, judged by the CPU-measured rounding noise. Results: $OUT/F2.tgz.
set -uo pipefail
C=.carry/F; B=$C/trtforge; O=/tmp/F2; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
fin() { cp $C/run2.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/F2.tgz -C /tmp F2; }
trap fin EXIT
cat $C/commit.txt
TRTFORGE_FP8_GEMM=1 TRTFORGE_CHECKS=fp8tl timeout 38 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_fp8tl.log 2>&1; echo rc=$?
grep -E "^(PASS|FAIL)|passed|error" $O/check_fp8tl.log | cut -c1-300
