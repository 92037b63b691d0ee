#!/usr/bin/env bash
# Lead's final lease (session 5), call 1: the merged main binary. Roofline bench (all precisions,
# bs 1/8/64, prompt 512), SmolLM2 shape, 4k-context KV A/B (bs64), serve at 64 streams on a fresh
# server vs the static JSONs + half-saturation TTFT, then correctness lists under timeouts.
# One tar: $OUT/final5.tgz.
set -uo pipefail
C=.carry/final5; B=$C/trtforge; O=/tmp/f5; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/run1.sh $C/run2.sh $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/final5.tgz -C /tmp f5; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; $B --version; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
echo "== bench"; timeout 170 $B bench --model preset:tinyllama-1.1b --precisions fp16,int8,int4,fp8 --batch-sizes 1,8,64 --input-lens 512 --output-len 128 --json $O/trtforge_tinyllama.json > $O/trtforge_tinyllama.log 2>&1; echo rc=$?; grep -E "^\|" $O/trtforge_tinyllama.log | tail -14; t
timeout 30 $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --json $O/trtforge_smollm2.json > $O/trtforge_smollm2.log 2>&1; grep -E "^\| fp16" $O/trtforge_smollm2.log | tail -1; t
echo "== bs64 attention A/B (attn_decode_cl8, opt-in, not yet checked)"; TRTFORGE_ATTN=cl8 timeout 30 $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 64 --input-lens 512 --output-len 128 --json $O/bs64_cl8.json > $O/bs64_cl8.log 2>&1; grep -E "^\| fp16" $O/bs64_cl8.log | tail -1; t
echo "== 4k context"; timeout 80 $B bench --model preset:tinyllama-1.1b --max-model-len 4096 --precisions fp16 --kv-cache fp16,fp8 --batch-sizes 64 --input-lens 4032 --output-len 64 --runs 1 --json $O/kv4k.json > $O/kv4k.log 2>&1; echo rc=$?; grep -E "^\|" $O/kv4k.log | tail -4; t
if [ -z "${NOSERVE:-}" ]; then
timeout 25 $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 64 --input-lens 72 --output-len 128 --json $O/static_p72.json > $O/static_p72.log 2>&1; grep -E "^\| fp16" $O/static_p72.log | tail -1; t
echo "== serve 64 streams (fresh server, defaults)"
TRTFORGE_SERVE_PROFILE=1 $B serve --model preset:tinyllama-1.1b --tokenizer $C/vocab.gguf --backend cuda --port 8011 --max-num-seqs 64 --max-num-batched-tokens 2048 > $O/serve.log 2>&1 &
SP=$!
for i in $(seq 240); do curl -sf localhost:8011/health >/dev/null && break; sleep 0.25; done; t
req() { curl -s localhost:8011/v1/completions -H 'content-type: application/json' -d '{"model":"tinyllama-1.1b","prompt":"To be, or not to be, that is the question","max_tokens":48,"ignore_eos":true,"temperature":0}'; }
req > $O/greedy_alone.json
( sleep 1.0; req > $O/greedy_load.json ) & GP=$!
timeout 45 $B bench serve --url http://127.0.0.1:8011 --concurrency 64 --num-prompts 768 --texts $C/texts --output-tokens 128 --static-json $O/trtforge_tinyllama.json --static-json $O/static_p72.json --static-precision fp16 --out $O/serve64 > $O/bench_serve.log 2>&1
wait $GP; grep -iE "^concurrency|static|ratio|×" $O/bench_serve.log | head -8; t
python3 - <<PY > $O/half_rate.txt
import json; l=json.load(open('$O/serve64/serve_results.json'))['levels'][0]; print('%.2f' % (l['request_throughput']/2 if 'request_throughput' in l else l.get('req_s',0)/2))
PY
R=$(cat $O/half_rate.txt); echo "half rate $R"
timeout 25 $B bench serve --url http://127.0.0.1:8011 --request-rates $R --num-prompts 512 --texts $C/texts --output-tokens 128 --out $O/serve_half > $O/bench_half.log 2>&1; grep -iE "^rate|ttft|TTFT" $O/bench_half.log | head -4; t
cmp -s <(python3 -c "import json;print(json.load(open('$O/greedy_alone.json'))['choices'][0]['text'])") <(python3 -c "import json;print(json.load(open('$O/greedy_load.json'))['choices'][0]['text'])") && echo "greedy alone == under load" | tee $O/outputs_check.txt || echo "greedy alone DIFFERS under load" | tee $O/outputs_check.txt
sleep 2.2; curl -s localhost:8011/metrics | grep -E "^trtforge_(kv_blocks_used|num_requests|preemptions)" > $O/metrics.txt; cat $O/metrics.txt
kill $SP; wait $SP; grep profile $O/serve.log | tail -2; t
echo "== SmolLM2 shape: static bs64 + serve 64 streams"
for L in 512 72; do timeout 25 $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 64 --input-lens $L --output-len 128 --json $O/sm_static_p$L.json > $O/sm_static_p$L.log 2>&1; grep -E "^\| fp16" $O/sm_static_p$L.log | tail -1; done; t
$B serve --model preset:smollm2-135m --tokenizer $C/vocab.gguf --backend cuda --port 8012 --max-num-seqs 64 --max-num-batched-tokens 2048 > $O/sm_serve.log 2>&1 &
SP=$!
for i in $(seq 240); do curl -sf localhost:8012/health >/dev/null && break; sleep 0.25; done; t
timeout 40 $B bench serve --url http://127.0.0.1:8012 --concurrency 64 --num-prompts 768 --texts $C/texts --output-tokens 128 --static-json $O/sm_static_p512.json --static-json $O/sm_static_p72.json --static-precision fp16 --out $O/sm_serve64 > $O/sm_bench_serve.log 2>&1
grep -iE "^concurrency|static|ratio|×" $O/sm_bench_serve.log | head -8
sleep 2.2; curl -s localhost:8012/metrics | grep -E "^trtforge_(kv_blocks_used|preemptions)" > $O/sm_metrics.txt; cat $O/sm_metrics.txt; kill $SP; wait $SP; t
fi
echo "== checks"
TRTFORGE_CHECKS=fp8tl timeout ${FP8TL_T:-100} $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_fp8tl.log 2>&1; echo rc=$?; grep -E "FAIL|passed|PASS" $O/check_fp8tl.log | tail -4; t
TRTFORGE_CHECKS=attn timeout ${CHK_T:-100} $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_attn.log 2>&1; echo rc=$?; grep -E "FAIL|passed" $O/check_attn.log | tail -6; t
if [ -n "${EXTRA:-}" ]; then echo "== extra"; eval "$EXTRA"; t; fi
