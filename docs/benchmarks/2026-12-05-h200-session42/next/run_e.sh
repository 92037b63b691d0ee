#!/usr/bin/env bash
# Prepared in session 42 (NOT RUN; ≈ 400 s + start). carry [".carry/z"]: s42.tgz = session 42's main binary and its
# NVRTC cache (its CUDA kernel sources are d3f46ea's), s39.tgz = 5745f20 (for run_d.sh's SW profile).
#  0. The paged checks of the tiny fixture, with "log-probabilities == the captured logits'" (new in session 42): if it
#     passes, CudaPagedBackend::supports_logprobs may return true (serve's `logprobs` on --backend cuda).
#  1–3. Session 41's run_d.sh on this binary (S=s42): fp8 / fp16 / int4 bs64, two wq shapes, the ncu per-kernel
#     profile of the int4 bs64 step.
# If .carry/z/s42.tgz is gone (it is git-ignored): cargo build --release, then
#   mkdir -p /tmp/s42c/s42/K && strip -o /tmp/s42c/s42/trtforge target/release/trtforge
#   for p in fp16 int4 int8 fp8; do LD_LIBRARY_PATH=<CUDA 13 NVRTC lib> TRTFORGE_CACHE_DIR=/tmp/s42c/s42/K \
#     TRTFORGE_CUDA_PRECOMPILE=sm_90 target/release/trtforge bench --isolate never --model preset:tinyllama-1.1b \
#     --precisions $p --batch-sizes 64 --input-lens 512 --output-len 128; done      # "kernels ... cached" is the success
#   LD_LIBRARY_PATH=<same> TRTFORGE_CACHE_DIR=/tmp/s42c/s42/K TRTFORGE_CUDA_PRECOMPILE=sm_90 target/release/trtforge \
#     cuda-check --tiny tests/fixtures/tiny_llama --paged                             # the tiny fixture's kernels too
#   gzip /tmp/s42c/s42/trtforge && tar czf .carry/z/s42.tgz -C /tmp/s42c s42
set -uo pipefail
mkdir -p /tmp/cz $OUT/rd && tar xzf .carry/z/s42.tgz -C /tmp/cz || exit 3
gunzip -f /tmp/cz/s42/trtforge.gz; chmod +x /tmp/cz/s42/trtforge
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
TRTFORGE_CACHE_DIR=/tmp/cz/s42/K timeout 150 /tmp/cz/s42/trtforge cuda-check --tiny tests/fixtures/tiny_llama --paged \
  > $OUT/rd/check_paged.log 2>&1
echo "check_paged rc=$?"; grep -E "log-prob|passed|failed|FAIL" $OUT/rd/check_paged.log | tail -8
S=s42 bash docs/benchmarks/2026-12-05-h200-session41/next/run_d.sh
