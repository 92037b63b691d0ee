#!/usr/bin/env bash
# Prepared in session 57, not run (device budget): #11 / #15's whole table beside the peer in one lease (template:
# session 54 call B) — the tiny fixture's paged checks, bs1 every precision + the SmolLM2 shape, bs8 fp16 / int4 /
# int8, bs64 every precision (and fp8 + int8 KV), then the peer's fp16 at bs 1 / 8 / 64 (≈ 560 s).
# Carry: `KV="int8" KVP="fp8" bash scripts/gpu_carry.sh NAME` on main, then `NAME=... bash next/table.sh` with
# carry [".carry/z"].
DL=${DL:-560}
NAME=${NAME:?the carry name} . scripts/gpu_bench_lib.sh
table
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
