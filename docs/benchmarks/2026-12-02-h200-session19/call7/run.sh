#!/usr/bin/env bash
# Session 19, call 7 (same machine): HEAD's checks of the batched decode GEMM path (TRTFORGE_CHECKS=tcg4 without
# TRTFORGE_TCG: tiny fixture 40 / 12 sequences fp16 / int8 / fp8 logits and greedy, TinyLlama-shape logits), as session 18.
set -uo pipefail
C=.carry/s19d; B=$C/trtforge; O=/tmp/s19c7; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
fin() { cp docs/benchmarks/2026-12-02-h200-session19/call7/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s19c7.tgz -C /tmp s19c7; }
trap fin EXIT
TRTFORGE_CHECKS=tcg4 timeout 200 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/checks.log 2>&1; echo "checks rc=$?"; grep -cE "^PASS" $O/checks.log; grep -E "FAIL|rror|passed|failed" $O/checks.log | tail -6
