#!/usr/bin/env bash
# Prepared in session 45 (no device lent: 239 s of budget, no start possible). NOT RUN. ≈ 480 s + start.
# carry [".carry/z"]: s45.tgz = `bash scripts/gpu_carry.sh s45` at 5f1dedc (CUDA kernel sources = d3f46ea's, as in
# sessions 41–44); rebuild it the same way if .carry/z/s45.tgz is gone or src/backend/cuda changed.
#  1. serve --backend cuda vs --backend cpu on tests/fixtures/tiny_llama (session 44's call2/serve_check.py: greedy
#     text, logprobs, echo scoring, logit_bias, penalties) — never run yet.
#  2. The issue-#11 table on main's default path: fp16 / int4 / int8 / fp8 at bs 1, 8, 64 (prompt 512, 128 new), one
#     process a precision.
#  3. The peer in the same lease: scripts/torch_baseline.py fp16 / int8 / int4 at bs 1, 8, 64.
# Then run_b.sh (ncu, one metric, the int4 bs64 step) in the next call on the same warm machine.
set -uo pipefail
mkdir -p /tmp/cz && tar xzf .carry/z/s45.tgz -C /tmp/cz || exit 3
gunzip -f /tmp/cz/s45/trtforge.gz; chmod +x /tmp/cz/s45/trtforge
B=/tmp/cz/s45/trtforge; export TRTFORGE_CACHE_DIR=/tmp/cz/s45/K LD_LIBRARY_PATH=/usr/local/cuda/lib64
R=$OUT/ra; mkdir -p $R
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
# 1. serve e2e
$B serve --model tests/fixtures/tiny_llama --backend cuda --host 127.0.0.1 --port 18500 > $R/serve_cuda.log 2>&1 &
P1=$!
$B serve --model tests/fixtures/tiny_llama --backend cpu --host 127.0.0.1 --port 18501 > $R/serve_cpu.log 2>&1 &
P2=$!
for i in $(seq 1 90); do
  curl -sf localhost:18500/health >/dev/null && curl -sf localhost:18501/health >/dev/null && break; sleep 1; done
t; timeout 120 python3 docs/benchmarks/2026-12-05-h200-session44/call2/serve_check.py http://127.0.0.1:18500 \
  http://127.0.0.1:18501 > $R/serve_check.log 2>&1; echo "serve_check rc=$?"; tail -25 $R/serve_check.log
kill -TERM $P1 $P2; wait $P1 $P2; t
# 2. trtforge
for p in fp16 int4 int8 fp8; do
  timeout 120 $B bench --isolate never --model preset:tinyllama-1.1b --precisions $p --batch-sizes 1,8,64 \
    --input-lens 512 --output-len 128 --json $R/$p.json > $R/$p.log 2>&1
  echo "$p rc=$? $(t)"; grep -E '^\| (fp|int)|rror' $R/$p.log | cut -c1-160
done
# 3. the peer
PYTHONUNBUFFERED=1 timeout 240 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 int8 int4 \
  --batch-sizes 1 8 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill \
  --out $R/torch_peer.json > $R/torch_peer.log 2>&1
echo "peer rc=$? $(t)"; grep -E "decode|rror" $R/torch_peer.log | tail -12
