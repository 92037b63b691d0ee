#!/usr/bin/env bash
# Prepared in session 43 (NOT RUN; ≈ 420 s + start); supersedes session 42's run_e.sh. carry [".carry/z"]: s43.tgz =
# the binary of e5ad852 (session 43; every later commit of the session changes only CPU-side code: reliability fixes)
# and its NVRTC cache (its CUDA kernel sources are d3f46ea's), s39.tgz = 5745f20 (for run_d.sh's SW profile).
#  0. The paged checks of the tiny fixture (fp32, fp16), with checks 5–7 of cuda_paged_check.rs:
#     "log-probabilities == the captured logits'" (session 42), "shaped tokens (logit_bias, penalties) == the captured
#     logits' choice" and "prompt log-probabilities vs CPU" (session 43). If they pass, CudaPagedBackend's
#     supports_logprobs / supports_shaping may return true (serve's logprobs, echo scoring, logit_bias and penalties
#     on --backend cuda).
#  1–3. Session 41's run_d.sh on this binary (S=s43): fp8 / fp16 / int4 bs64, two wq shapes, the ncu per-kernel
#     profile of the int4 bs64 step.
# If .carry/z/s43.tgz is gone (it is git-ignored): cargo build --release, then
#   mkdir -p /tmp/s43c/s43/K && strip -o /tmp/s43c/s43/trtforge target/release/trtforge
#   for p in fp16 int4 int8 fp8; do LD_LIBRARY_PATH=<CUDA 13 NVRTC lib> TRTFORGE_CACHE_DIR=/tmp/s43c/s43/K \
#     TRTFORGE_CUDA_PRECOMPILE=sm_90 target/release/trtforge bench --isolate never --model preset:tinyllama-1.1b \
#     --precisions $p --batch-sizes 64 --input-lens 512 --output-len 128; done      # "kernels ... cached" is the success
#   LD_LIBRARY_PATH=<same> TRTFORGE_CACHE_DIR=/tmp/s43c/s43/K TRTFORGE_CUDA_PRECOMPILE=sm_90 target/release/trtforge \
#     cuda-check --tiny tests/fixtures/tiny_llama --paged                             # the tiny fixture's kernels too
#   gzip /tmp/s43c/s43/trtforge && tar czf .carry/z/s43.tgz -C /tmp/s43c s43
set -uo pipefail
mkdir -p /tmp/cz $OUT/rd && tar xzf .carry/z/s43.tgz -C /tmp/cz || exit 3
gunzip -f /tmp/cz/s43/trtforge.gz; chmod +x /tmp/cz/s43/trtforge
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
TRTFORGE_CACHE_DIR=/tmp/cz/s43/K timeout 200 /tmp/cz/s43/trtforge cuda-check --tiny tests/fixtures/tiny_llama --paged \
  > $OUT/rd/check_paged.log 2>&1
echo "check_paged rc=$?"; grep -E "log-prob|shaped|passed|failed|FAIL|rror" $OUT/rd/check_paged.log | tail -12
S=s43 bash docs/benchmarks/2026-12-05-h200-session41/next/run_d.sh
