#!/usr/bin/env bash
# Lead's final lease, call 1: trtforge roofline bench (all precisions), cuda-check (static + paged,
# tiny + TinyLlama/SmolLM2 shapes), serve at 64 streams with and without host/GPU overlap.
set -uo pipefail
C=.carry/final2; B=$C/trtforge; O=${OUT:-/tmp/out}; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; $B --version; cat $C/commit.txt; python3 -c "import torch;print('torch',torch.__version__)"; } > $O/env.txt 2>&1; cat $O/env.txt
echo "== trtforge bench (roofline mode)"; timeout 130 $B bench --model preset:tinyllama-1.1b --precisions fp16,int8,int4 --batch-sizes 1,8,64 --input-lens 512 --output-len 128 --json $O/trtforge_tinyllama.json > $O/trtforge_tinyllama.log 2>&1; echo rc=$?; grep -E "^\|" $O/trtforge_tinyllama.log | tail -14; t
timeout 30 $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --json $O/trtforge_smollm2.json > $O/trtforge_smollm2.log 2>&1; grep -E "^\|" $O/trtforge_smollm2.log | tail -3; t
echo "== serve 64 streams: default vs TRTFORGE_SERVE_OVERLAP=1"
for mode in 0 1; do
  TRTFORGE_SERVE_OVERLAP=$mode TRTFORGE_SERVE_PROFILE=1 $B serve --model preset:tinyllama-1.1b --tokenizer $C/vocab.gguf --backend cuda --port 8011 --kv-cache-memory 8GiB --max-num-seqs 64 --max-num-batched-tokens 2048 > $O/serve_overlap$mode.log 2>&1 &
  SP=$!
  for i in $(seq 160); do curl -sf localhost:8011/health >/dev/null && break; sleep 0.25; done; t
  timeout 45 $B bench serve --url http://127.0.0.1:8011 --concurrency 64 --num-prompts 768 --texts $C/texts --output-tokens 128 --out $O/overlap$mode > $O/bench_overlap$mode.log 2>&1
  echo "overlap=$mode: $(grep -E "^concurrency" $O/bench_overlap$mode.log)"
  curl -s localhost:8011/metrics | grep -E "^trtforge_(kv_blocks_used|num_requests)" > $O/metrics_overlap$mode.txt
  sleep 2.2; kill $SP; wait $SP; grep profile $O/serve_overlap$mode.log | tail -2; t
done
echo "== cuda-check (static + paged; tiny, TinyLlama and SmolLM2 shapes)"; timeout 170 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check.log 2>&1; echo rc=$?; grep -E "FAIL|passed" $O/check.log; t
