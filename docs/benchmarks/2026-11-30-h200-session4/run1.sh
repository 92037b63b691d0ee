#!/usr/bin/env bash
# Lead's final lease (session 4), call 1: cuda-check (static + paged; tiny, TinyLlama and SmolLM2 shapes),
# roofline bench (all precisions, bs 1/8/64), SmolLM2 shape, serve at 64 streams vs the static JSON.
# Results: one tar, $OUT/final4.tgz.
set -uo pipefail
C=.carry/final4; B=$C/trtforge; O=/tmp/f4; mkdir -p $O
PRECS=${PRECS:-fp16,int8,int4}
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/run1.sh $C/run2.sh $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/final4.tgz -C /tmp f4; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; $B --version; cat $C/commit.txt; python3 -c "import torch;print('torch',torch.__version__)"; } > $O/env.txt 2>&1; cat $O/env.txt
echo "== cuda-check"; timeout 230 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check.log 2>&1; echo rc=$?; grep -E "FAIL|passed" $O/check.log | tail -8; t
echo "== cuda-check fp8kv"; TRTFORGE_CHECKS=fp8kv timeout 110 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_fp8kv.log 2>&1; echo rc=$?; grep -E "FAIL|passed" $O/check_fp8kv.log | tail -8; t
echo "== bench"; timeout 150 $B bench --model preset:tinyllama-1.1b --precisions $PRECS --batch-sizes 1,8,64 --input-lens 512 --output-len 128 --json $O/trtforge_tinyllama.json > $O/trtforge_tinyllama.log 2>&1; echo rc=$?; grep -E "^\|" $O/trtforge_tinyllama.log | tail -16; t
timeout 30 $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --json $O/trtforge_smollm2.json > $O/trtforge_smollm2.log 2>&1; grep -E "^\|" $O/trtforge_smollm2.log | tail -2; t
if [ -n "${SERVE:-}" ]; then
timeout 30 $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 64 --input-lens 72 --output-len 128 --json $O/static_p72.json > $O/static_p72.log 2>&1; grep -E "^\| fp16" $O/static_p72.log; t
echo "== serve 64 streams"
TRTFORGE_SERVE_PROFILE=1 $B serve --model preset:tinyllama-1.1b --tokenizer $C/vocab.gguf --backend cuda --port 8011 --kv-cache-memory 8GiB --max-num-seqs 64 --max-num-batched-tokens 2048 > $O/serve.log 2>&1 &
SP=$!
for i in $(seq 160); do curl -sf localhost:8011/health >/dev/null && break; sleep 0.25; done; t
timeout 45 $B bench serve --url http://127.0.0.1:8011 --concurrency 64 --num-prompts 768 --texts $C/texts --output-tokens 128 --static-json $O/trtforge_tinyllama.json --static-json $O/static_p72.json --static-precision fp16 --out $O/serve64 > $O/bench_serve.log 2>&1
grep -iE "^concurrency|static|ratio" $O/bench_serve.log | head -8
curl -s localhost:8011/metrics | grep -E "^trtforge_(kv_blocks_used|num_requests)" > $O/metrics.txt; cat $O/metrics.txt
sleep 2.2; kill $SP; wait $SP; grep profile $O/serve.log | tail -2; t
fi
if [ -n "${EXTRA:-}" ]; then echo "== extra"; eval "$EXTRA"; t; fi
