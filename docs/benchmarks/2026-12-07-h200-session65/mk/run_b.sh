#!/usr/bin/env bash
# Session 65, call B: the megakernel on the SmolLM2 shape with call A's deadlock fixed (a loader took one gate/up or
# head tile when a tile is one chunk: every other tile of the layer never came). SmolLM2 fp16 bs1 default path and
# megakernel alternated, the megakernel checks against the CPU reference (SmolLM2 first), then guided_regex on
# `serve --backend cuda` beside `--backend cpu` (../regex/check.py).
# Carry s65c (`.carry/z`: s65a's kernel modules + the SmolLM2 megakernel module of the fix, and the binary of the fix).
# `run` with carry [".carry/z"].
DL=${DL:-200}
NAME=${NAME:-s65c}
. scripts/gpu_bench_lib.sh
SM=("${TL[@]/preset:tinyllama-1.1b/preset:smollm2-135m}")
for i in 1 2; do
  (TL=("${SM[@]}"); bn smol_def_$i fp16 1 X=1)
  (TL=("${SM[@]}"); bn smol_mk_$i fp16 1 TRTFORGE_MK=1)
done
ck mk $(( $(left) > 190 ? 90 : $(left) / 2 )) TRTFORGE_MK=1 TRTFORGE_CHECKS=mk
grep -E "PASS|FAIL|error" $R/mk.log | cut -c1-220
serve_pair
timeout $(( $(left) - 15 )) python3 docs/benchmarks/2026-12-07-h200-session65/regex/check.py http://127.0.0.1:8123 \
  http://127.0.0.1:8124 2>&1 | tee $R/regex.log | tail -3
kill %1 %2; wait; echo "done $(t)"
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
