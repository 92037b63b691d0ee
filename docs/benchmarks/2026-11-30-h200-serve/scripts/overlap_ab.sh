#!/usr/bin/env bash
# helper P, for the lead's final lease (~60 s): serve --backend cuda at 64 streams, default vs
# TRTFORGE_SERVE_OVERLAP=1 (engine host work overlapped with the next decode step), profiled; plus
# the paged checks. Binary: branch paged @ 1c015f7 (stripped, kernels precompiled for sm_90). Run: bash .carry/paged/overlap_ab.sh
set -uo pipefail
C=.carry/paged; B=$C/trtforge; O=${OUT:-/tmp/out}; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
timeout 40 $B cuda-check --paged --tiny tests/fixtures/tiny_llama > $O/paged_check.log 2>&1; grep -E "FAIL|passed" $O/paged_check.log; t
for mode in 0 1; do
  TRTFORGE_SERVE_OVERLAP=$mode TRTFORGE_SERVE_PROFILE=1 $B serve --model preset:tinyllama-1.1b --tokenizer $C/vocab.gguf --backend cuda --port 8011 --kv-cache-memory 8GiB --max-num-seqs 64 --max-num-batched-tokens 2048 > $O/serve_overlap$mode.log 2>&1 &
  SP=$!
  for i in $(seq 160); do curl -sf localhost:8011/health >/dev/null && break; sleep 0.25; done; t
  timeout 40 $B bench serve --url http://127.0.0.1:8011 --concurrency 64 --num-prompts 768 --texts $C/texts --output-tokens 128 --out $O/overlap$mode > $O/bench_overlap$mode.log 2>&1
  echo "overlap=$mode: $(grep -E "^concurrency" $O/bench_overlap$mode.log)"; rm -f $O/overlap$mode/serve_latency.svg $O/overlap$mode/serve_report.md
  sleep 2.2; kill $SP; wait $SP; grep profile $O/serve_overlap$mode.log | tail -2; t
done
