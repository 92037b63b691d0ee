#!/usr/bin/env bash
# Helper T, session 7 (branch ttft7), call 2 (measurement only, no default change): every timed TTFT of
# the bench row in order (TRTFORGE_TTFT_RUNS=1) with --runs 40, and the cuBLASLt prefill A/B repeated.
set -uo pipefail
C=.carry/T; B=$C/trtforge; O=/tmp/t7b; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
fin() { cp $C/run2.sh $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/t7b.tgz -C /tmp t7b; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
TRTFORGE_TTFT_RUNS=1 TRTFORGE_PREFILL_AB="def=feyg,lt=feygl,def2=feyg,lt2=feygl" timeout 45 $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --runs 40 --json $O/r40.json > $O/r40.log 2>&1; echo rc=$?
grep -E "AB |^\| fp16|TTFT" $O/r40.log | sed -E 's/; kernels:.*//' | cut -c1-400
nvidia-smi --query-gpu=clocks.sm --format=csv,noheader
