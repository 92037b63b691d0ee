#!/usr/bin/env bash
# Session 49 call 1 (carry [".carry/z"]: s49.tgz = `LINEINFO=1 bash scripts/gpu_carry.sh s49`, kernels of this
# session's four-warpgroup commit). One machine start, ≈ 575 s:
#  1. bench A/B/C, one process each, alternating: one (default), two (`TRTFORGE_WQ_WG=2`) and four
#     (`TRTFORGE_WQ_WG=4`, new) consumer warpgroups a wq block — int4 bs32 + bs64, int8 / fp8 bs64, int4 again;
#     fp16 bs64 as the same-call ratio base; and gate/up split in three K slices of a 2-slot ring (`gateup:3x2`: 528
#     blocks, four an SM — balanced waves instead of 176 tiles on 132 SMs);
#  2. the `wq` check list (every layer linear on wq, K-split clusters included) with four warpgroups, then with
#     two, for the time left (a full list needs ≈ 200 s); DL=SECONDS ends the call sooner (default 575).
NAME=s49 . scripts/gpu_bench_lib.sh
bn i4_w1 int4 32,64 X=1
bn i4_w2 int4 32,64 TRTFORGE_WQ_WG=2
bn i4_w4 int4 32,64 TRTFORGE_WQ_WG=4
bn f16 fp16 64 X=1
bn i4_w4b int4 64 TRTFORGE_WQ_WG=4
bn i4_w2b int4 64 TRTFORGE_WQ_WG=2
bn i4_w1b int4 64 X=1
bn i8_w4 int8 64 TRTFORGE_WQ_WG=4
bn i8_w1 int8 64 X=1
bn i8_w2 int8 64 TRTFORGE_WQ_WG=2
bn f8_w2 fp8 64 TRTFORGE_WQ_WG=2
bn f8_w1 fp8 64 X=1
bn f8_w4 fp8 64 TRTFORGE_WQ_WG=4
bn i4_g3x2 int4 64 TRTFORGE_WQ_SHAPE=gateup:3x2
for wg in 4 2; do
  left=$(( ${DL:-575} - ($(date +%s) - T0) ))
  [ $left -gt 20 ] || break
  timeout $left env TRTFORGE_WQ=1 TRTFORGE_WQ_WG=$wg TRTFORGE_CHECKS=wq $B cuda-check --tiny tests/fixtures/tiny_llama \
    --tinyllama > $R/check_wq_wg$wg.log 2>&1; echo "check wq wg$wg (${left} s) rc=$? $(t)"
  grep -E "PASS|FAIL|passed|rror" $R/check_wq_wg$wg.log | cut -c1-200
done
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
