#!/usr/bin/env bash
# Session 44 call 2 (H100, the machine of call 1). carry [".carry/z"]: s44b.tgz = 7377bb4 + supports_logprobs /
# supports_shaping true (CUDA sources unchanged: s44.tgz's NVRTC cache K).
#  1. serve --backend cuda vs --backend cpu on tests/fixtures/tiny_llama: logprobs, echo scoring, logit_bias,
#     penalties (serve_check.py).
#  2. ncu, one metric (gpu__time_duration, no replay): every kernel of the int4 bs64 run (prompt 64, 2 new).
set -uo pipefail
mkdir -p /tmp/cz && for s in s44 s44b; do tar xzf .carry/z/$s.tgz -C /tmp/cz || exit 3; done
gunzip -f /tmp/cz/s44b/trtforge.gz; chmod +x /tmp/cz/s44b/trtforge
B=/tmp/cz/s44b/trtforge; export TRTFORGE_CACHE_DIR=/tmp/cz/s44/K LD_LIBRARY_PATH=/usr/local/cuda/lib64
R=$OUT/r2; mkdir -p $R
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
$B serve --model tests/fixtures/tiny_llama --backend cuda --host 127.0.0.1 --port 18500 > $R/serve_cuda.log 2>&1 &
P1=$!
$B serve --model tests/fixtures/tiny_llama --backend cpu --host 127.0.0.1 --port 18501 > $R/serve_cpu.log 2>&1 &
P2=$!
for i in $(seq 1 90); do
  curl -sf localhost:18500/health >/dev/null && curl -sf localhost:18501/health >/dev/null && break; sleep 1; done
t; timeout 120 python3 docs/benchmarks/2026-12-05-h200-session44/call2/serve_check.py http://127.0.0.1:18500 http://127.0.0.1:18501 \
  > $R/serve_check.log 2>&1; echo "serve_check rc=$?"; tail -25 $R/serve_check.log
kill -TERM $P1 $P2; wait $P1 $P2; t
if [ "${NCU:-1}" = 1 ]; then
timeout 110 ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum \
  --csv --page raw --print-units base $B bench --isolate never \
  --model preset:tinyllama-1.1b --precisions int4 --batch-sizes 64 --input-lens 64 --output-len 2 --runs 1 --warmup 0 \
  > /tmp/ncu_main.csv 2> $R/ncu_main.err
echo "ncu rc=$? $(t) lines $(wc -l < /tmp/ncu_main.csv)"; tail -2 $R/ncu_main.err | cut -c1-200; gzip -c /tmp/ncu_main.csv > $R/ncu_main.csv.gz
python3 docs/benchmarks/2026-12-05-h200-session41/call3/summarize.py /tmp/ncu_main.csv 2>&1 | head -40
fi
t
