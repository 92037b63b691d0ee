#!/usr/bin/env bash
# helper P, call 3: checks after merging launch2 (static + paged, tiny models) and a profiled c64 serve run.
set -uo pipefail
C=.carry/paged; B=$C/trtforge; O=${OUT:-/tmp/out}; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
timeout 60 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check.log 2>&1; echo rc=$?; grep -E "FAIL|passed" $O/check.log; t
TRTFORGE_SERVE_PROFILE=1 $B serve --model preset:tinyllama-1.1b --tokenizer $C/vocab.gguf --backend cuda --port 8011 --kv-cache-memory 8GiB --max-num-seqs 64 --max-num-batched-tokens 2048 > $O/serve.log 2>&1 &
SP=$!
for i in $(seq 160); do curl -sf localhost:8011/health >/dev/null && break; sleep 0.25; done; t
timeout 40 $B bench serve --url http://127.0.0.1:8011 --concurrency 64 --num-prompts 768 --texts $C/texts --output-tokens 128 --out $O/sat > $O/bench.log 2>&1; grep -E "^concurrency" $O/bench.log; t
sleep 2.2; kill $SP; wait $SP; grep profile $O/serve.log; t
