#!/usr/bin/env bash
# Prepared in session 57, not run (device budget): #11 / #15's whole table beside the peer in one lease (template:
# session 54 call B) — the tiny fixture's paged checks, bs1 every precision + the SmolLM2 shape, bs8 fp16 / int4 /
# int8, bs64 every precision (and fp8 + int8 KV), then the peer's fp16 at bs 1 / 8 / 64 (≈ 560 s).
# Carry: `KV="int8" KVP="fp8" bash scripts/gpu_carry.sh NAME` on main, then `NAME=... bash next/table.sh` with
# carry [".carry/z"].
DL=${DL:-560}
NAME=${NAME:?the carry name} . scripts/gpu_bench_lib.sh
timeout 100 $B cuda-check --tiny tests/fixtures/tiny_llama --paged > $R/paged.log 2>&1
echo "paged rc=$? $(t)"; grep -E "FAIL|passed|rror" $R/paged.log | tail -4 | cut -c1-140
for p in fp16 int4 int8 fp8; do bn ${p}_1 $p 1 X=1; done
timeout 80 $B bench --isolate never --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 \
  --output-len 128 --json $R/smol_1.json > $R/smol_1.log 2>&1
echo "smol_1 rc=$? $(t)"; grep -E '^\| (fp|int)|rror|compil' $R/smol_1.log | cut -c1-140
for p in fp16 int4 int8; do bn ${p}_8 $p 8 X=1; done
for p in fp16 int4 int8 fp8; do bn ${p}_64 $p 64 X=1; done
bn fp8_k8_64 "fp8 --kv-cache int8" 64 X=1
peer torch_peer --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 8 64 --input-lens 512 --output-len 128 \
  --runs 2 --warmup 1 --eager-prefill
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
