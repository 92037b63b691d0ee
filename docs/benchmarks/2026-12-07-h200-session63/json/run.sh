#!/usr/bin/env bash
# Session 63: JSON mode and structured outputs (response_format json_object / json_schema, guided_json) on `serve
# --backend cuda`, beside the same model on the CPU backend: check.py's choices and load sets. Carry s63b (`.carry/z`:
# s62j's kernel modules — the kernel sources did not change — with this session's binary, stripped and gzipped).
# `run` with carry [".carry/z"].
DL=${DL:-220}
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
timeout $(( $(left) - 10 )) python3 docs/benchmarks/2026-12-07-h200-session63/json/check.py http://127.0.0.1:8123 \
  http://127.0.0.1:8124 2>&1 | tee $R/json.log
kill %1 %2; wait; tail -3 $R/serve_cuda.log
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
