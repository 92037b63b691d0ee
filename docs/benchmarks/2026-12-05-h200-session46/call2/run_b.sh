#!/usr/bin/env bash
# Prepared in session 45, NOT RUN (≈ 200 s). carry [".carry/z"] (s45.tgz, see run_a.sh). The per-kernel time of the
# int4 bs64 decode step (prompt 64, 2 new) under ncu with ONE metric (no replay passes: session 44's four metrics
# could not load the engine within 100 s), summarized by session 41's summarize.py.
set -uo pipefail
mkdir -p /tmp/cz && [ -x /tmp/cz/s45/trtforge ] || { tar xzf .carry/z/s45.tgz -C /tmp/cz && gunzip -f /tmp/cz/s45/trtforge.gz \
  && chmod +x /tmp/cz/s45/trtforge; } || exit 3
B=/tmp/cz/s45/trtforge; export TRTFORGE_CACHE_DIR=/tmp/cz/s45/K LD_LIBRARY_PATH=/usr/local/cuda/lib64
R=$OUT/rb; mkdir -p $R
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
timeout 220 ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum \
  --csv --page raw --print-units base $B bench --isolate never \
  --model preset:tinyllama-1.1b --precisions int4 --batch-sizes 64 --input-lens 64 --output-len 2 --runs 1 --warmup 0 \
  > /tmp/ncu_main.csv 2> $R/ncu_main.err
echo "ncu rc=$? $(t) lines $(wc -l < /tmp/ncu_main.csv)"; tail -2 $R/ncu_main.err | cut -c1-200
gzip -c /tmp/ncu_main.csv > $R/ncu_main.csv.gz
python3 docs/benchmarks/2026-12-05-h200-session41/call3/summarize.py /tmp/ncu_main.csv 2>&1 | head -60
t
