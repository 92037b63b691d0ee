#!/usr/bin/env bash
# helper P, call 1: paged-KV correctness on the GPU + a serve smoke run (TinyLlama shape).
set -uo pipefail
C=.carry/paged; B=$C/trtforge; O=${OUT:-/tmp/out}; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
echo "== cuda-check --paged"; timeout 110 $B cuda-check --paged --tinyllama --tiny tests/fixtures/tiny_llama > $O/check.log 2>&1; echo rc=$?; cat $O/check.log; t
echo "== serve smoke"
$B serve --model preset:tinyllama-1.1b --tokenizer $C/vocab.gguf --backend cuda --port 8011 --kv-cache-memory 4GiB --max-num-seqs 64 --max-num-batched-tokens 2048 > $O/serve.log 2>&1 &
SP=$!
for i in $(seq 120); do curl -sf localhost:8011/health >/dev/null && break; sleep 0.5; done; t; cat $O/serve.log
M=$(curl -s localhost:8011/v1/models | python3 -c 'import sys,json;print(json.load(sys.stdin)["data"][0]["id"])'); echo "model=$M"
for i in 1 2; do curl -s localhost:8011/v1/completions -H 'content-type: application/json' -d "{\"model\":\"$M\",\"prompt\":\"To be, or not to be, that is the question\",\"max_tokens\":24,\"temperature\":0}"; echo; done
curl -s localhost:8011/v1/completions -H 'content-type: application/json' -d "{\"model\":\"$M\",\"prompt\":\"To be\",\"max_tokens\":8,\"temperature\":0.8,\"top_p\":0.9,\"seed\":3}"; echo
timeout 60 $B bench serve --url http://127.0.0.1:8011 --concurrency 16,64 --num-prompts 64 --texts $C/texts --output-tokens 128 --out $O/bs > $O/bench.log 2>&1; echo rc=$?; tail -25 $O/bench.log; t
curl -s localhost:8011/metrics | grep -iE "kv|running|waiting" | head; kill $SP; wait $SP; tail -3 $O/serve.log; t
cd $O && tar czf bs.tgz bs && rm -rf bs
