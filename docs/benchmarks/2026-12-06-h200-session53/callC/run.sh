#!/usr/bin/env bash
# Session 53 call C (carry [".carry/z"] = s53: `bash scripts/gpu_carry.sh s53` at e4ebeb8, the final kernels = c10af23's):
# the wq self-test as refactored in 9e97e05 (its first GPU run) and the tiny fixture's paged checks on the final binary,
# then #11 / #15's rows on the final code beside the peer in one lease.
DL=${DL:-540}
NAME=s53 . scripts/gpu_bench_lib.sh
wqk
timeout 100 $B cuda-check --tiny tests/fixtures/tiny_llama --paged > $R/paged.log 2>&1
echo "paged rc=$? $(t)"; grep -E "PASS|FAIL|passed|rror" $R/paged.log | tail -4 | cut -c1-140
for p in fp16 int4 int8 fp8; do bn ${p}_1 $p 1 X=1; done
for p in fp16 int4; do bn ${p}_8 $p 8 X=1; done
for p in fp16 int4 int8 fp8; do bn ${p}_64 $p 64 X=1; done
peer torch_peer --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 8 64 --input-lens 512 --output-len 128 \
  --runs 2 --warmup 1 --eager-prefill
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
