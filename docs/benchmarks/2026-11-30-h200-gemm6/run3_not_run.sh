#!/usr/bin/env bash
# Helper G, not run (device cap spent): what call 2 left out — tcg3 at bs64 for int4 / fp8 (A/B), the
# TinyLlama-shape tcg checks for every weight format (prompts of 64 / 20 / 9 tokens), the paged checks
# (64-row decode through tcg3). ≈ 150 s on a warm machine with the kernels precompiled.
set -uo pipefail
C=.carry/G; B=$C/trtforge; O=/tmp/g3; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/run*.sh $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/g3.tgz -C /tmp g3; }
trap fin EXIT
for v in 0 3; do
  TRTFORGE_TCG=$v timeout 80 $B bench --model preset:tinyllama-1.1b --precisions int4,fp8 --batch-sizes 64 --input-lens 512 --output-len 128 --runs 1 --json $O/bench_q_$v.json > $O/bench_q_$v.log 2>&1; echo "bench $v rc=$?"
  grep -E "eager decode|^\| (int4|fp8)" $O/bench_q_$v.log | cut -c1-300; t
done
TRTFORGE_TCG=3 TRTFORGE_CHECKS=tcg timeout 150 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_tcg3.log 2>&1; echo rc=$?; grep -E "PASS|FAIL|error" $O/check_tcg3.log | cut -c1-200; t
TRTFORGE_TCG=3 timeout 150 $B cuda-check --paged --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_paged.log 2>&1; echo rc=$?; grep -E "PASS|FAIL|error" $O/check_paged.log | cut -c1-200 | tail -20; t
