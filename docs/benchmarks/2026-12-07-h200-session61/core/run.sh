#!/usr/bin/env bash
# Session 61: the core of #11 / #15's table in ≈ 240 s, for a lease with little device budget left: the peer's fp16
# bs 1 / 8 / 64 first, then trtforge fp16 at bs 1 / 8 / 64, fp8 and fp8 + int8 KV at bs64 (#15's ratio), int4 and int8
# bs1. Carry s60c (`.carry/z`, recipe in docs/benchmarks/2026-12-06-h200-session60/next/run.sh).
DL=${DL:-240}
NAME=${NAME:-s60c}
. scripts/gpu_bench_lib.sh
peer torch_peer --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 8 64 --input-lens 512 --output-len 128 \
  --runs 2 --warmup 1 --eager-prefill
for r in "fp16_1 fp16 1" "fp16_64 fp16 64" "fp8_64 fp8 64" "fp16_8 fp16 8" "int4_1 int4 1" "int8_1 int8 1"; do
  set -- $r; [ $(left) -gt 25 ] && bn $1 $2 $3 X=1
done
[ $(left) -gt 25 ] && bn fp8_k8_64 "fp8 --kv-cache int8" 64 X=1
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
