#!/usr/bin/env bash
# Session 52, call C (carry s52 = df01475, as call B): down split two ways instead of four (TRTFORGE_WQ_SHAPE=down:2x4)
# with the batched cluster sums — the self-test of call B put int8 / fp8 down at 2x4 4–5 % under 4x4 — inside the
# bs64 / bs40 step, A/B interleaved in one lease, fp16 beside.
NAME=s52 . scripts/gpu_bench_lib.sh
for p in int8 fp8 int4; do
  bn ${p}_64_a $p 64 X=1
  bn ${p}_64_d2 $p 64 TRTFORGE_WQ_SHAPE=down:2x4
done
bn int8_64_a2 int8 64 X=1
bn int8_64_d2b int8 64 TRTFORGE_WQ_SHAPE=down:2x4
bn int8_40_a int8 40 X=1
bn int8_40_d2 int8 40 TRTFORGE_WQ_SHAPE=down:2x4
bn fp16_64 fp16 64 X=1
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
