#!/usr/bin/env bash
# Prepared in session 58, not run (device budget): call B again with the registration fixed. TRTFORGE_ATTN_ROPE=1 (RoPE
# + the KV append inside attn_decode_cx8: attn_decode_cx8r / cx8rh, no rope_append launch) — its checks against the CPU
# reference with the kernel forced at 12 rows, then A/B rows at bs64 interleaved in separate processes (≈ 500 s).
# Carry (git-ignored, rebuild if .carry/z/s58c.tgz is gone): at c07ccd2 or later with kernels.cu unchanged,
#   KV="int8" KVP="fp16 fp8" bash scripts/gpu_carry.sh s58c
# then the rope list's modules into it (untar to /tmp/pc, `gunzip -k s58c/trtforge.gz`, for E in
# "TRTFORGE_ATTN_ROPE=1" "X=1": `env $E TRTFORGE_CHECKS=rope TRTFORGE_ATTN=cx8all TRTFORGE_CACHE_DIR=/tmp/pc/s58c/K
# TRTFORGE_CUDA_PRECOMPILE=sm_90 LD_LIBRARY_PATH=/tmp/nvrtc/x/nvidia/cu13/lib /tmp/pc/s58c/trtforge cuda-check --tiny
# tests/fixtures/tiny_llama` (every check then fails with "... cached": the success), remove the unzipped binary,
# retar as .carry/z/s58c.tgz). `run` with carry [".carry/z"].
DL=${DL:-560}
NAME=${NAME:-s58c} . scripts/gpu_bench_lib.sh
ck rope_on 200 TRTFORGE_CHECKS=rope TRTFORGE_ATTN=cx8all TRTFORGE_ATTN_ROPE=1
b() { [ $(left) -gt 35 ] && bn "$@"; }
for r in 1 2; do
  b fp16_64_off$r fp16 64 X=1
  b fp16_64_on$r fp16 64 TRTFORGE_ATTN_ROPE=1
  b fp8k8_64_off$r "fp8 --kv-cache int8" 64 X=1
  b fp8k8_64_on$r "fp8 --kv-cache int8" 64 TRTFORGE_ATTN_ROPE=1
done
b fp8_64_on fp8 64 TRTFORGE_ATTN_ROPE=1
b fp8_64_off fp8 64 X=1
# one block a (row, kv head) as at bs64, then the same list without the switch (the errors to compare)
[ $(left) -gt 100 ] && ck rope_on_cs1 $(( $(left) - 20 )) TRTFORGE_CHECKS=rope TRTFORGE_ATTN=cx8all TRTFORGE_ATTN_CSF=1 TRTFORGE_ATTN_ROPE=1
[ $(left) -gt 100 ] && ck rope_off $(( $(left) - 20 )) TRTFORGE_CHECKS=rope TRTFORGE_ATTN=cx8all
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
