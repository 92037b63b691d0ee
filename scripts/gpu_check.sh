#!/usr/bin/env bash
# GPU correctness checks and benchmark of the CUDA engine (`--backend cuda`), for the GPU machine,
# which has no Rust toolchain: this script builds nothing. It takes a prebuilt release binary and
# its inputs from a carry folder and prints a short table at the end.
#
#   scripts/gpu_check.sh [CARRY] [OUT]
#
# CARRY (default .carry/cuda) holds:
#   trtforge           stripped release binary (cargo build --release; strip -o)
#   kcache/            optional NVRTC CUBIN cache (TRTFORGE_CUDA_PRECOMPILE=sm_90 runs fill it)
#   hamlet_gut.txt     optional perplexity text
# SmolLM2 is read from $SMOLLM2_GGUF (default /tmp/smol/SmolLM2-135M-Instruct.Q4_1.gguf); the
# SmolLM2 checks are skipped, with a message, when it is absent.
# OUT (default $OUT, else /tmp/gpu_check) receives check.log, bench_*.json/log and summary.md.
set -uo pipefail
C=${1:-.carry/cuda}
O=${2:-${OUT:-/tmp/gpu_check}}
mkdir -p "$O"
B=$C/trtforge
[ -x "$B" ] || { echo "no binary at $B"; exit 2; }
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
# Kernel cache: copy the carried one to a writable place.
export TRTFORGE_CACHE_DIR=/tmp/trtforge_kcache
mkdir -p "$TRTFORGE_CACHE_DIR"
[ -d "$C/kcache" ] && cp -n "$C"/kcache/*.cubin "$TRTFORGE_CACHE_DIR"/ 2>/dev/null
G=${SMOLLM2_GGUF:-/tmp/smol/SmolLM2-135M-Instruct.Q4_1.gguf}
TEXT=$C/hamlet_gut.txt
{
  date -u +"date %Y-%m-%dT%H:%M:%SZ"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader
  "$B" --version
} | tee "$O/env.txt"

rc=0
SM=()
if [ -f "$G" ]; then
  SM=(--smollm2 "$G")
  [ -f "$TEXT" ] && SM+=(--text "$TEXT")
else
  echo "SKIP SmolLM2 checks: $G not found"
fi
echo "== correctness (cuda-check)"
"$B" cuda-check --tiny tests/fixtures/tiny_llama --tinyllama "${SM[@]}" 2>"$O/check.err" | tee "$O/check.log" || rc=1

echo "== benchmark TinyLlama-1.1B shape (random weights), prompt 512, 128 new tokens"
"$B" bench --model preset:tinyllama-1.1b --precisions fp16,int8,int4 --batch-sizes 1 --input-lens 512 --output-len 128 --json "$O/bench_bs1.json" 2>&1 | tee "$O/bench_bs1.log" || rc=1
"$B" bench --model preset:tinyllama-1.1b --precisions fp16,int8,int4 --batch-sizes 8 64 --input-lens 512 --output-len 128 --json "$O/bench_fp16_batch.json" 2>&1 | tee "$O/bench_batch.log" || rc=1
echo "== experiment: without programmatic dependent launch (TRTFORGE_PDL=0), bs1"
TRTFORGE_PDL=0 "$B" bench --model preset:tinyllama-1.1b --precisions fp16,int4 --batch-sizes 1 --input-lens 512 --output-len 128 2>&1 | grep "bs1:" | tee "$O/bench_pdl.log"
if [ -f "$G" ]; then
  echo "== benchmark SmolLM2-135M bs1"
  "$B" bench --model "$G" --precisions fp16,int8,int4 --group-size 128 --batch-sizes 1 --input-lens 512 --output-len 128 --json "$O/bench_smollm2.json" 2>&1 | tee "$O/bench_smollm2.log" || rc=1
  echo "== CLI: generate and eval through --backend cuda"
  "$B" generate --model "$G" --backend cuda --precision fp16 --prompt "The capital of France is" --greedy --max-new-tokens 16 2>&1 | tee "$O/generate.log" || rc=1
  if [ -f "$TEXT" ]; then
    "$B" eval --model "$G" --backend cuda --precision fp16 --text "$TEXT" --ctx 512 --windows 4 2>&1 | tail -1 | tee "$O/eval_cuda.log" || rc=1
    "$B" eval --model "$G" --backend cpu --text "$TEXT" --ctx 512 --windows 4 2>&1 | tail -1 | tee "$O/eval_cpu.log" || rc=1
  fi
fi

{
  echo "# CUDA engine check — $(head -1 "$O/env.txt" | cut -d' ' -f2)"
  echo
  echo "GPU: $(sed -n 2p "$O/env.txt")  "
  echo "binary: $(sed -n 3p "$O/env.txt")"
  echo
  echo '```'
  grep -E "^(PASS|FAIL)|passed, " "$O/check.log"
  echo '```'
  for f in bench_bs1 bench_batch bench_smollm2; do
    [ -f "$O/$f.log" ] && { echo; grep -E "^\||^model" "$O/$f.log"; }
  done
  echo
  [ -f "$O/eval_cuda.log" ] && echo "eval cuda fp16: $(cat "$O/eval_cuda.log")  "
  [ -f "$O/eval_cpu.log" ] && echo "eval cpu f32:   $(cat "$O/eval_cpu.log")"
  [ -f "$O/bench_pdl.log" ] && { echo; echo "with TRTFORGE_PDL=0:"; echo '```'; cat "$O/bench_pdl.log"; echo '```'; }
  [ -f "$O/generate.log" ] && { echo; echo "generate --backend cuda (SmolLM2 fp16, greedy):"; echo '```'; cat "$O/generate.log"; echo '```'; }
} > "$O/summary.md"
echo
cat "$O/summary.md"
exit $rc
