#!/usr/bin/env bash
# Session 63, one call: (1) JSON mode and structured outputs on `serve --backend cuda` beside the CPU backend
# (../json/check.py, ≤ 200 s), then (2) the core of #11 / #15's table (session 61's core/run.sh: the peer's fp16 bs 1 /
# 8 / 64, trtforge fp16 bs 1 / 64 / 8, fp8 bs64, int4 / int8 bs1, fp8 + int8 KV bs64, SmolLM2 bs1) in what is left.
# Carry s63b (`.carry/z`: s62j's kernel modules with the binary of 06c5c24). `run` with carry [".carry/z"].
DL=${DL:-590}
NAME=${NAME:-s63b}
. scripts/gpu_bench_lib.sh
TOK=tests/fixtures/llama_spm_vocab/ggml-vocab-llama-spm.gguf
M=(--model preset:tinyllama-1.1b --tokenizer $TOK)
$B serve "${M[@]}" --backend cuda --port 8123 --max-num-seqs 16 > $R/serve_cuda.log 2>&1 &
$B serve "${M[@]}" --backend cpu --port 8124 --max-num-seqs 4 > $R/serve_cpu.log 2>&1 &
for u in 8123 8124; do
  for i in $(seq 120); do curl -sf localhost:$u/health > /dev/null && break; sleep 1; done
  echo "$u up $(t)"
done
timeout 200 python3 docs/benchmarks/2026-12-07-h200-session63/json/check.py http://127.0.0.1:8123 \
  http://127.0.0.1:8124 2>&1 | tee $R/json.log
kill %1 %2; wait; tail -3 $R/serve_cuda.log; echo "json done $(t)"
[ $(left) -gt 130 ] && peer torch_peer --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 8 64 --input-lens 512 \
  --output-len 128 --runs 2 --warmup 1 --eager-prefill
for r in "fp16_1 fp16 1" "fp16_64 fp16 64" "fp8_64 fp8 64" "fp16_8 fp16 8" "int4_1 int4 1" "int8_1 int8 1"; do
  set -- $r; [ $(left) -gt 25 ] && bn $1 $2 $3 X=1
done
[ $(left) -gt 25 ] && bn fp8_k8_64 "fp8 --kv-cache int8" 64 X=1
[ $(left) -gt 25 ] && (TL=("${TL[@]/preset:tinyllama-1.1b/preset:smollm2-135m}"); bn smol_1 fp16 1 X=1)
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
