#!/usr/bin/env bash
# Prepared in session 47, NOT RUN (the budget ran out: a machine start failed with 256 s left). carry [".carry/z"]:
# s47d.tgz = `bash scripts/gpu_carry.sh s47d` built from main (session 47 built one at the even-ring fix, before a
# host-only refactor; rebuild it from main at the start of the next session). ≈ 130 s of start + ≈ 210 s.
#  1. bench A/B, one process each, alternating: one warpgroup (default) vs TRTFORGE_WQ_WG=2, int4 / int8 bs64;
#  2. then (NOT in the background: session 47 call 3's background check hung the GPU under the benches) the `wq`
#     check list with TRTFORGE_WQ_WG=2 (every layer linear on wq, K-split clusters too), as far as 100 s reach
#     (SKIP_CHECK=1 leaves it out). If WG=2 wins, give the check its full time (≈ 200 s) before making it the default.
NAME=s47d . scripts/gpu_bench_lib.sh
W=TRTFORGE_WQ_WG=2
bn i4_w1 int4 64 X=1
bn i4_w2 int4 64 $W
bn i8_w2 int8 64 $W
bn i8_w1 int8 64 X=1
[ "${SKIP_CHECK:-0}" = 1 ] || timeout 100 env TRTFORGE_WQ=1 $W TRTFORGE_CHECKS=wq $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama \
  > $R/check_wq_wg2.log 2>&1; echo "check wq rc=$? $(t)"; grep -E "PASS|FAIL|passed|rror" $R/check_wq_wg2.log | cut -c1-200
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
