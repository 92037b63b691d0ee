#!/usr/bin/env bash
# helper P, call 2: H200 serve benchmark (issue #12) beside the static `bench` figure, one lease.
set -uo pipefail
C=.carry/paged; B=$C/trtforge; O=${OUT:-/tmp/out}; mkdir -p $O/r
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; (cd $O && tar czf results.tgz r); }
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; $B --version; } > $O/r/env.txt 2>&1; cat $O/r/env.txt
echo "== cuda-check --paged (tiny)"; timeout 40 $B cuda-check --paged --tiny tests/fixtures/tiny_llama > $O/r/check.log 2>&1; echo rc=$?; grep -cE "^PASS" $O/r/check.log; grep -E "FAIL|passed" $O/r/check.log; t
serve_bench() { # name model tokenizer
  local N=$1 M=$2 TK=$3 P=8011
  $B serve --model $M --tokenizer $TK --backend cuda --port $P --kv-cache-memory 8GiB --max-num-seqs 64 --max-num-batched-tokens 2048 > $O/r/serve_$N.log 2>&1 &
  local SP=$!
  for i in $(seq 120); do curl -sf localhost:$P/health >/dev/null && break; sleep 0.25; done; t
  timeout 60 $B bench serve --url http://127.0.0.1:$P --concurrency 64 --num-prompts 384 --texts $C/texts --output-tokens 128 --out $O/r/${N}_saturation > $O/r/bench_${N}_sat.log 2>&1
  grep -E "^concurrency" $O/r/bench_${N}_sat.log
  local SAT=$(python3 -c "import json;print(json.load(open('$O/r/${N}_saturation/serve_results.json'))['levels'][0]['request_throughput'])")
  local RATES=$(python3 -c "s=$SAT;print(','.join('%.1f'%(s*f) for f in (0.25,0.5,0.75)))"); echo "saturation $SAT req/s -> rates $RATES"
  timeout 120 $B bench serve --url http://127.0.0.1:$P --concurrency 1,16,64 --request-rates $RATES --num-prompts 128 --texts $C/texts --output-tokens 128 --out $O/r/${N} > $O/r/bench_${N}.log 2>&1
  grep -E "^(concurrency|rate|poisson|request)" $O/r/bench_${N}.log; t
  curl -s localhost:$P/metrics | grep -E "^trtforge_(kv_blocks|num_requests)" > $O/r/metrics_$N.txt
  kill $SP; wait $SP
}
echo "== static bench, TinyLlama shape fp16 (contiguous cache, then identity block tables)"
timeout 70 $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 1,64 --input-lens 72 --output-len 128 --json $O/r/static_tinyllama.json > $O/r/static_tinyllama.log 2>&1; tail -5 $O/r/static_tinyllama.log; t
TRTFORGE_KV=paged timeout 70 $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 1,64 --input-lens 72 --output-len 128 --json $O/r/static_tinyllama_identity.json > $O/r/static_tinyllama_identity.log 2>&1; tail -4 $O/r/static_tinyllama_identity.log; t
echo "== serve TinyLlama shape"; serve_bench tinyllama preset:tinyllama-1.1b $C/vocab.gguf
echo "== SmolLM2-135M shape"
timeout 40 $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1,64 --input-lens 72 --output-len 128 --json $O/r/static_smollm2.json > $O/r/static_smollm2.log 2>&1; tail -4 $O/r/static_smollm2.log; t
serve_bench smollm2 preset:smollm2-135m $C/smollm2_tokenizer.json
t; rm -rf $O/r
