#!/usr/bin/env bash
# Session 16 call 2: tcg4 v3 with slot/phase counters (no run-time st / nst divisions): the engine body in the
# prototype harness (run4.sh), bench A/B at 16/32/64 rows vs the default, the tcg4 checks.
set -uo pipefail
C=.carry/s16b; B=$C/trtforge; O=${OUT:-/tmp}/s16b; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 PATH=/usr/local/cuda/bin:$PATH
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
date -u > $O/env.txt; cp $C/run.sh $O/
OUT=$O bash docs/benchmarks/2026-12-01-h200-session15/gemm_ws/run4.sh > $O/run4.log 2>&1; grep -E "^[a-z]|engine|best|layer" $O/run4.log | head -60; t
bn() { local n=$1; shift
  env "${E[@]}" timeout 60 $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --precisions fp16 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "^\| (fp|int)|rror" $O/$n.log | cut -c1-150 | head -6; t; }
E=(TRTFORGE_TCG=4); bn v4_a --batch-sizes 16,32,64
E=(); bn def_a --batch-sizes 16,32,64
E=(TRTFORGE_TCG=4); bn v4_b --batch-sizes 16,32,64
E=(TRTFORGE_TCG=4 TRTFORGE_TCG4_S=1); bn v4_s1 --batch-sizes 64
E=(TRTFORGE_TCG=4 TRTFORGE_TCG4_S=2); bn v4_s2 --batch-sizes 64
T1=$(date +%s); TRTFORGE_TCG=4 TRTFORGE_CHECKS=tcg4 timeout 100 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_tcg4.log 2>&1; echo "check tcg4 rc=$? $(( $(date +%s) - T1 )) s"
grep -c PASS $O/check_tcg4.log; grep FAIL $O/check_tcg4.log | head -3; t
