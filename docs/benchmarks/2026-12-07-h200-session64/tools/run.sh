#!/usr/bin/env bash
# Session 64, one call: (1) function calling on `serve --backend cuda` beside `--backend cpu` (check.py: named and
# "required" calls valid, streamed = unstreamed, greedy cuda = cpu; "auto" through --tool-call-parser llama3_json),
# (2) session 63's JSON-mode / schema check (../../2026-12-07-h200-session63/json/check.py, same prompts) on the new
# whitespace layouts, (3) the bs1 decode timelines (TRTFORGE_TIMELINE=1) of the SmolLM2 and TinyLlama shapes, fp16:
# where #11's SmolLM2 row (3× target) spends its 30 layers. Carry s64a (`.carry/z`: s62j's kernel modules, kernel
# sources unchanged since 61612b5, with this session's binary). `run` with carry [".carry/z"].
DL=${DL:-560}
NAME=${NAME:-s64a}
. scripts/gpu_bench_lib.sh
TOK=tests/fixtures/llama_spm_vocab/ggml-vocab-llama-spm.gguf
M=(--model preset:tinyllama-1.1b --tokenizer $TOK --kv-cache-memory 2GiB)
$B serve "${M[@]}" --backend cuda --port 8123 --max-num-seqs 16 > $R/serve_cuda.log 2>&1 &
$B serve "${M[@]}" --backend cpu --port 8124 --max-num-seqs 4 > $R/serve_cpu.log 2>&1 &
$B serve "${M[@]}" --backend cuda --port 8125 --max-num-seqs 8 --tool-call-parser llama3_json > $R/serve_auto.log 2>&1 &
for u in 8123 8124 8125; do
  for i in $(seq 150); do curl -sf localhost:$u/health > /dev/null && break; sleep 1; done
  echo "$u up $(t)"
done
timeout 150 python3 docs/benchmarks/2026-12-07-h200-session64/tools/check.py http://127.0.0.1:8123 \
  http://127.0.0.1:8124 http://127.0.0.1:8125 2>&1 | tee $R/tools.log
echo "tools done $(t)"
timeout 200 python3 docs/benchmarks/2026-12-07-h200-session63/json/check.py http://127.0.0.1:8123 \
  http://127.0.0.1:8124 2>&1 | tee $R/json.log
kill %1 %2 %3; wait; grep -E "tool calls|serving" $R/serve_*.log | cut -c1-200; echo "json done $(t)"
[ $(left) -gt 60 ] && (TL=("${TL[@]/preset:tinyllama-1.1b/preset:smollm2-135m}"); bn smol_tl fp16 1 TRTFORGE_TIMELINE=1) \
  && grep -E -i "layer|qkv|attn|gateup|down|head|step|µs|us " $R/smol_tl.log | head -40
[ $(left) -gt 45 ] && bn tiny_tl fp16 1 TRTFORGE_TIMELINE=1 && grep -E -i "layer|qkv|attn|gateup|down|head|step|µs|us " \
  $R/tiny_tl.log | head -40
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
