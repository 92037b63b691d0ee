#!/usr/bin/env bash
# Prepared in session 42 (NOT RUN; ≈ 400 s + start): session 41's run_d.sh on session 42's main, after the paged checks
# (with the new log-probabilities check, the gate for serving `logprobs` on --backend cuda). carry [".carry/z"]:
# s42.tgz = session 42's main (its CUDA kernel sources are d3f46ea's), s39.tgz = 5745f20 for the SW profile.
#  1. fp8 bs64 default beside fp16 (#15's 1.3×; call 2's 1.088× was on 5745f20, 1.5 % slower than main for int4).
#  2. Shorter per-CTA chains without a rebuild (TRTFORGE_WQ_SHAPE, checked at load): down in 8 K slices, gate/up with
#     4 ring slots kept but 1 slice (the default) vs 3 slots.
#  3. ncu: every kernel of the last int4 bs64 decode step alone (prompt 64), main's default, then 5745f20 with SW —
#     where a layer's ≈ 56 µs go now, and why SW lost 8 %. Summarise with ../../2026-12-05-h200-session41/call3/summarize.py out/ncu_*.csv.
# If .carry/z/s42.tgz is gone (it is git-ignored): cargo build --release, then
#   mkdir -p /tmp/s42c/s42/K && strip -o /tmp/s42c/s42/trtforge target/release/trtforge
#   for p in fp16 int4 int8 fp8; do LD_LIBRARY_PATH=<CUDA 13 NVRTC lib> TRTFORGE_CACHE_DIR=/tmp/s42c/s42/K \
#     TRTFORGE_CUDA_PRECOMPILE=sm_90 target/release/trtforge bench --isolate never --model preset:tinyllama-1.1b \
#     --precisions $p --batch-sizes 64 --input-lens 512 --output-len 128; done      # "kernels ... cached" is the success
#   LD_LIBRARY_PATH=<same> TRTFORGE_CACHE_DIR=/tmp/s42c/s42/K TRTFORGE_CUDA_PRECOMPILE=sm_90 target/release/trtforge \
#     cuda-check --tiny tests/fixtures/tiny_llama --paged                             # the tiny fixture's kernels too
#   gzip /tmp/s42c/s42/trtforge && tar czf .carry/z/s42.tgz -C /tmp/s42c s42   (drop the s39 lines without s39.tgz)
# Results land in $OUT/rd as they come (a cut call still returns them); the tool returns at most 8 files: the logs
# and JSON are packed into one tarball per step.
set -uo pipefail
mkdir -p /tmp/cz; for s in s39 s42; do tar xzf .carry/z/$s.tgz -C /tmp/cz || exit 3; gunzip -f /tmp/cz/$s/trtforge.gz; chmod +x /tmp/cz/$s/trtforge; done
R=/tmp/rd; mkdir -p $R $OUT/rd; export LD_LIBRARY_PATH=/usr/local/cuda/lib64
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
pack() { tar czf $OUT/rd/$1.tgz -C /tmp rd; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
# 0. The paged checks of the tiny fixture, with "log-probabilities == the captured logits'" (new in session 42): if it
#    passes, CudaPagedBackend::supports_logprobs may return true (serve's `logprobs` on --backend cuda).
TRTFORGE_CACHE_DIR=/tmp/cz/s42/K timeout 150 /tmp/cz/s42/trtforge cuda-check --tiny tests/fixtures/tiny_llama --paged \
  > $R/check_paged.log 2>&1; echo "check_paged rc=$? $(t)"; grep -E "log-prob|passed|failed|FAIL" $R/check_paged.log | tail -8
cp $R/check_paged.log $OUT/rd/
bn() { # name binary precision batches [env...]
  local n=$1 s=$2 p=$3 bs=$4; shift 4
  env "$@" TRTFORGE_CACHE_DIR=/tmp/cz/$s/K timeout 80 /tmp/cz/$s/trtforge bench --isolate never --model preset:tinyllama-1.1b \
    --precisions $p --batch-sizes $bs --input-lens 512 --output-len 128 --json $R/$n.json > $R/$n.log 2>&1
  echo "$n rc=$? $(t)"; grep -E '^\| (fp|int)|rror|compil' $R/$n.log | cut -c1-140; }
bn f8 s42 fp8 64 X=1
bn f16 s42 fp16 64 X=1
bn i4 s42 int4 64 X=1
bn i4_d8 s42 int4 64 TRTFORGE_WQ_SHAPE=down:8x3
bn i4_gu1x3 s42 int4 64 TRTFORGE_WQ_SHAPE=gateup:1x3
bn i4_b s42 int4 64 X=1
pack bench
nc() { # name binary [env...]
  local n=$1 s=$2; shift 2
  env "$@" TRTFORGE_CACHE_DIR=/tmp/cz/$s/K timeout 80 ncu --clock-control none --cache-control none \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,launch__registers_per_thread \
    --csv --page raw --print-units base /tmp/cz/$s/trtforge bench --isolate never \
    --model preset:tinyllama-1.1b --precisions int4 --batch-sizes 64 --input-lens 64 --output-len 2 --runs 1 --warmup 0 \
    > $R/ncu_$n.csv 2> $R/ncu_$n.err
  echo "ncu $n rc=$? $(t) lines $(wc -l < $R/ncu_$n.csv)"; tail -2 $R/ncu_$n.err | cut -c1-200; }
nc main s42 X=1
pack ncu1
nc sw s39 TRTFORGE_WQ_SWIGLU=1
pack ncu2
t
