#!/usr/bin/env bash
# Lead's final lease (session 6), call 1: the merged main binary. Bench all precisions bs 1/8/64
# (prompt 512, 128 new), SmolLM2 shape bs1, then the checks of the new defaults (prefill list:
# long prefills + graph replay + TinyLlama-shape paged; bs1q; attn static+paged). One tar: $OUT/final6.tgz.
set -uo pipefail
C=.carry/final6; B=$C/trtforge; O=/tmp/f6; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/run1.sh $C/run2.sh $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/final6.tgz -C /tmp f6; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; $B --version; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
echo "== bench"; timeout 175 $B bench --model preset:tinyllama-1.1b --precisions fp16,int8,int4,fp8 --batch-sizes 1,8,64 --input-lens 512 --output-len 128 --json $O/trtforge_tinyllama.json > $O/trtforge_tinyllama.log 2>&1; echo rc=$?; grep -E "^\|" $O/trtforge_tinyllama.log | tail -14; t
timeout 30 $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --json $O/trtforge_smollm2.json > $O/trtforge_smollm2.log 2>&1; grep -E "^\| fp16" $O/trtforge_smollm2.log | tail -1; t
echo "== checks"
TRTFORGE_CHECKS=prefill timeout ${PF_T:-80} $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_prefill.log 2>&1; echo rc=$?; grep -E "FAIL|passed" $O/check_prefill.log | tail -6; t
TRTFORGE_CHECKS=bs1q timeout 40 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_bs1q.log 2>&1; echo rc=$?; grep -E "FAIL|passed" $O/check_bs1q.log | tail -4; t
TRTFORGE_CHECKS=attn timeout 45 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_attn.log 2>&1; echo rc=$?; grep -E "FAIL|passed" $O/check_attn.log | tail -4; t
if [ -n "${EXTRA:-}" ]; then echo "== extra"; eval "$EXTRA"; t; fi
