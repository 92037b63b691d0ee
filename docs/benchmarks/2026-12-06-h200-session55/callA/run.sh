#!/usr/bin/env bash
# Session 55 call A (carry [".carry/z", ".carry/f"]: .carry/z/s55b.tgz = `bash scripts/gpu_carry.sh s55b` at 2392e76,
# .carry/f/attn_fp16.cubin as in session 54's next/run.sh header).
# 1. What one decode-attention launch costs inside the bs64 step: TRTFORGE_ATTN_REPS=0 / 1 / 2 / 3 (the attention
#    launched n times a decode pass; 0 skips it). step(1) − step(0) = one launch in its place in the step, step(2) −
#    step(1) = one more launch right after an attention (its own context, not the GEMM / RoPE before it).
# 2. Session 54's prepared next/run.sh (the probe against numpy, one-buffer caches, after a GEMM; ncu of the probe's
#    and the engine's attention launches), run with this carry.
DL=${DL:-520}
NAME=s55b . scripts/gpu_bench_lib.sh
bn f16_r1 fp16 64 TRTFORGE_ATTN_REPS=1
bn f16_r0 fp16 64 TRTFORGE_ATTN_REPS=0
bn f16_r2 fp16 64 TRTFORGE_ATTN_REPS=2
bn f16_r3 fp16 64 TRTFORGE_ATTN_REPS=3
bn f16_r1b fp16 64 TRTFORGE_ATTN_REPS=1
bn i4_r1 int4 64 TRTFORGE_ATTN_REPS=1
bn i4_r0 int4 64 TRTFORGE_ATTN_REPS=0
bn i4_r2 int4 64 TRTFORGE_ATTN_REPS=2
DL=$(left) CARRY=s55b bash docs/benchmarks/2026-12-06-h200-session54/next/run.sh
t
