#!/usr/bin/env bash
# Session 18, call 3 (final lease, part 1): the checks of the batched decode GEMM path, now cuBLASLt at >= 32 rows by
# default (TRTFORGE_CHECKS=tcg4 without TRTFORGE_TCG: tiny fixture 40 / 12 sequences fp16 / int8 / fp8 logits, greedy
# 12 and 40 sequences, TinyLlama-shape logits), then HEAD's rows, one bench process per precision; the peer in call 4.
set -uo pipefail
C=.carry/s18b; B=$C/trtforge; O=/tmp/s18c3; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp docs/benchmarks/2026-12-02-h200-session18/call3/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s18c3.tgz -C /tmp s18c3; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
TRTFORGE_CHECKS=tcg4 timeout 150 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/checks.log 2>&1; echo "checks rc=$?"; grep -cE "PASS" $O/checks.log; grep -E "FAIL|rror|passed|failed" $O/checks.log | tail -8; t
bn() { local n=$1 m=$2; shift 2
  timeout 90 $B bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "^\| (fp|int)|rror" $O/$n.log | cut -c1-120; t; }
bn b_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1,8,16,32,64
for p in int4 int8 fp8; do bn b_$p tinyllama-1.1b --precisions $p --batch-sizes 1,8,64; done
bn b_smol smollm2-135m --precisions fp16 --batch-sizes 1,8
