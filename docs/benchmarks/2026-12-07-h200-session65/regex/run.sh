#!/usr/bin/env bash
# Session 65, call B: guided_regex / structured_outputs.regex on `serve --backend cuda` beside `--backend cpu`
# (check.py). Carry: a binary with the regex commits (scripts/gpu_carry.sh, or a refreshed s65a). `run` with carry
# [".carry/z"].
DL=${DL:-200}
NAME=${NAME:-s65b}
. scripts/gpu_bench_lib.sh
serve_pair
timeout $(( $(left) - 15 )) python3 docs/benchmarks/2026-12-07-h200-session65/regex/check.py http://127.0.0.1:8123 \
  http://127.0.0.1:8124 2>&1 | tee $R/regex.log
kill %1 %2; wait; echo "done $(t)"
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
