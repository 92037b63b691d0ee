#!/usr/bin/env bash
# Prepared in session 48 (no device was lent that session: `status` said "no new device machine is lent at
# present"), NOT RUN. It is session 47's next/run_a.sh on session 48's main. carry [".carry/z"]: s48.tgz =
# `bash scripts/gpu_carry.sh s48` built from main (git-ignored; rebuild it at the start of the next session if main
# moved). ≈ 130 s of machine start + ≈ 240 s.
#  1. bench A/B, one process each, alternating: one consumer warpgroup a wq block (default) vs TRTFORGE_WQ_WG=2 (two
#     warpgroups taking alternate stages of an even ring), int4 / int8 / fp8 bs64, int4 bs32;
#  2. then — NOT in the background: session 47 call 3's background check hung the GPU under the benches — the `wq`
#     check list with TRTFORGE_WQ_WG=2 (every layer linear on wq, K-split clusters too), as far as 100 s reach
#     (SKIP_CHECK=1 leaves it out). If WG=2 wins, give the check its full time (≈ 200 s) before making it the default.
NAME=s48 . scripts/gpu_bench_lib.sh
W=TRTFORGE_WQ_WG=2
bn i4_w1 int4 32,64 X=1
bn i4_w2 int4 32,64 $W
bn i8_w2 int8 64 $W
bn i8_w1 int8 64 X=1
bn f8_w1 fp8 64 X=1
bn f8_w2 fp8 64 $W
bn i4_w2b int4 64 $W
bn i4_w1b int4 64 X=1
[ "${SKIP_CHECK:-0}" = 1 ] || timeout 100 env TRTFORGE_WQ=1 $W TRTFORGE_CHECKS=wq $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama \
  > $R/check_wq_wg2.log 2>&1; echo "check wq rc=$? $(t)"; grep -E "PASS|FAIL|passed|rror" $R/check_wq_wg2.log | cut -c1-200
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
