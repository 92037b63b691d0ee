#!/usr/bin/env bash
# Session 36 call 2: `serve --backend cuda` re-measured on main f4188b0 (last measured in session 5, 2026-11-30, when
# the static bs64 decode rate was 34.1k at prompt 512 — it is 46.6k now): two fresh servers with the defaults, c64 x 768
# requests of 128 tokens, greedy alone vs under load, the static rows (bs64, prompt 72 and 512) from the same call; then
# #15's fp8 at bs64 with every fp8 feature (fp8 KV, the f8g W8A8 GEMM) beside fp16.
# Carried: .carry/z/sv.tgz = sv/{trtforge.gz (main's stripped binary), K (NVRTC caches for sm_90/sm_90a), texts
# (models/shakespeare), vocab.gguf (tests/fixtures/llama_spm_vocab), commit.txt}.
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/sv.tgz -C /tmp/cz && gunzip -f /tmp/cz/sv/trtforge.gz && chmod +x /tmp/cz/sv/trtforge
C=/tmp/cz/sv; B=$C/trtforge; R=/tmp/sv; mkdir -p $R
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=$C/K TRTFORGE_SERVE_PROFILE=1
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
trap "tar czf $OUT/sv.tgz -C /tmp sv" EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; date -u; cat $C/commit.txt; sha256sum $B; } | tee $R/env.txt
S="serve --model preset:tinyllama-1.1b --tokenizer $C/vocab.gguf --backend cuda --max-num-seqs 64 --max-num-batched-tokens 2048"
$B $S --port 8041 > $R/serve_D1.log 2>&1 & P1=$!
$B $S --port 8042 > $R/serve_D2.log 2>&1 & P2=$!
for p in 8041 8042; do for i in $(seq 240); do curl -sf localhost:$p/health >/dev/null && break; sleep 0.25; done; done; t
grep -hE "^(serving|warm-up|KV pool)" $R/serve_*.log | cut -c1-300
timeout 60 $B bench --isolate never --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 64 --input-lens 72 512 --output-len 128 --json $R/static.json > $R/static.log 2>&1
echo "static rc=$?"; grep -E "^\| fp16|rror" $R/static.log; t
req() { curl -s localhost:$1/v1/completions -H 'content-type: application/json' -d "{\"model\":\"tinyllama-1.1b\",\"prompt\":\"To be, or not to be, that is the question\",\"max_tokens\":64,\"ignore_eos\":true,\"temperature\":0}" | python3 -c 'import json,sys;d=json.load(sys.stdin);print(json.dumps(d["choices"][0]["text"]))'; }
for p in 8041 8042; do req $p > $R/greedy_alone_$p.txt; done
BS="bench serve --concurrency 64 --num-prompts 768 --texts $C/texts --output-tokens 128 --static-json $R/static.json --static-precision fp16"
for x in D1:8041 D2:8042; do n=${x%%:*}; p=${x#*:}
  ( sleep 1.0; req $p > $R/greedy_load_${n}_$p.txt ) & Q=$!
  timeout 40 $B $BS --url http://127.0.0.1:$p --out $R/c64_$n > $R/bench_c64_$n.log 2>&1
  wait $Q; echo "$n c64 rc=$?"; grep -E "^concurrency|× the static|static" $R/bench_c64_$n.log | head -4 | cut -c1-220; t
done
for f in $R/greedy_*.txt; do cmp -s $R/greedy_alone_8041.txt $f && echo "same as D1 alone: $(basename $f)" || echo "DIFFERS: $(basename $f)"; done | tee $R/outputs_check.txt
for x in D1:8041:$P1 D2:8042:$P2; do IFS=: read n p pid <<< "$x"
  curl -s localhost:$p/metrics | grep -E "^trtforge_(kv_blocks|num_requests|preemptions|engine_steps)" > $R/metrics_$n.txt
  kill $pid; echo "$n $(grep -E '^trtforge_kv_blocks_used ' $R/metrics_$n.txt) $(grep -E '^trtforge_preemptions_total' $R/metrics_$n.txt)"
done; wait; t
grep -E "profile|step" $R/serve_D1.log | tail -5 | cut -c1-300
bench() { # name precision kv [env...]
  local n=$1 pr=$2 kv=$3; shift 3
  env "$@" timeout 60 $B bench --isolate never --model preset:tinyllama-1.1b --precisions $pr --kv-cache $kv --batch-sizes 64 --input-lens 512 --output-len 128 --json $R/$n.json > $R/$n.log 2>&1
  echo "$n rc=$? t=$(( $(date +%s) - T0 ))"; grep -E "^\| fp|rror" $R/$n.log | cut -c1-200; }
bench fp16_64 fp16 fp16 X=1; bench fp8_64 fp8 fp16 X=1; bench fp8kv_64 fp8 fp8 X=1; bench fp8kvg_64 fp8 fp8 TRTFORGE_FP8_GEMM=1; bench fp16_64b fp16 fp16 X=1
t
