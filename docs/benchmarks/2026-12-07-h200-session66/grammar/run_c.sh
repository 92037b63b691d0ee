#!/usr/bin/env bash
# Session 66, call C: guided_grammar / structured_outputs.grammar (GBNF) on `serve --backend cuda` beside
# `--backend cpu` (check.py); guided_regex ran the same way in call B.
# Carry s66a (`.carry/z`): s65c's kernel modules (no CUDA source changed since 35a5388) + the stripped binary of
# f798545 + lark's wheel (lark-1.3.1-py3-none-any.whl, check.py's oracle). `run` with carry [".carry/z"].
DL=${DL:-150}
NAME=${NAME:-s66a}
. scripts/gpu_bench_lib.sh
mkdir -p /tmp/lark && (cd /tmp/lark && python3 -m zipfile -e /tmp/cz/$NAME/lark-1.3.1-py3-none-any.whl .)
serve_pair
PYTHONPATH=/tmp/lark timeout $(( $(left) - 15 )) python3 docs/benchmarks/2026-12-07-h200-session66/grammar/check.py \
  http://127.0.0.1:8123 http://127.0.0.1:8124 2>&1 | tee $R/grammar.log | tail -4
kill %1 %2; wait; echo "done $(t)"
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
