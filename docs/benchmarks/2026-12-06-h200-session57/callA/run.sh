#!/usr/bin/env bash
# Prepared in session 56, NOT RUN (no machine could be started after call B; the device budget ran out on failed starts).
# Two carries in .carry/z, `run` with carry [".carry/z"]:
#   s56b (the default kernels + rmsnorm_bp):  KV="int8" KVP="fp16 fp8" bash scripts/gpu_carry.sh s56b
#   s56c (the 8-bit tile loop of next/acx_q_hoist.patch): git apply docs/benchmarks/2026-12-06-h200-session56/next/acx_q_hoist.patch,
#        KV="int8" KVP="fp16 fp8" bash scripts/gpu_carry.sh s56c, then precompile the check lists below into its K
#        (tar x; TRTFORGE_CACHE_DIR=<its K> TRTFORGE_CUDA_PRECOMPILE=sm_90 with TRTFORGE_CHECKS=attn TRTFORGE_ATTN=cx8all /
#        TRTFORGE_CHECKS=prefill TRTFORGE_ATTN=cx8all TRTFORGE_ATTN_CS=1 / TRTFORGE_CHECKS=kvpf TRTFORGE_KV_PREFETCH=1
#        `trtforge cuda-check --tiny tests/fixtures/tiny_llama`; tar c), and `git checkout src` after the build.
# (1) the hoisted 8-bit tile loop (≈ 240 → ≈ 197 SASS instructions a tile; acx_q_emu.py: the same bytes for every lane):
#     fp8 + int8 KV bs64 old (s56b) / new (s56c), interleaved, and its checks with the bs64 kernel forced at every batch
#     (`TRTFORGE_ATTN=cx8all`: the attn list's tiny32 f16 / int8 / fp8 caches; the prefill list with
#     `TRTFORGE_ATTN_CS=1`, one block a sequence: several tiles a warp);
# (2) TRTFORGE_KV_PREFETCH=1 (opt-in): fp16 and fp8 + int8 KV bs64 off / on, and `TRTFORGE_CHECKS=kvpf` with it on;
# (3) ncu SourceCounters of the new 8-bit launch (where its warps wait, per SASS instruction). Steps by priority, each
#     skipped when too little of the deadline DL (420 s) is left.
DL=${DL:-420}
NAME=s56b . scripts/gpu_bench_lib.sh
BOLD=$B
NAME=s56c . scripts/gpu_bench_lib.sh
old() { local b=$B; B=$BOLD; bn "$@" TRTFORGE_CACHE_DIR=/tmp/cz/s56b/K; B=$b; }
g() { [ $(left) -gt $1 ]; }  # more than $1 s left
old k8_old "fp8 --kv-cache int8" 64 X=1
bn k8_new "fp8 --kv-cache int8" 64 X=1
g 70 && ck ck_attn 60 TRTFORGE_CHECKS=attn TRTFORGE_ATTN=cx8all
g 40 && bn f16_off fp16 64 X=1
g 40 && bn f16_pf fp16 64 TRTFORGE_KV_PREFETCH=1
g 45 && bn k8_pf "fp8 --kv-cache int8" 64 TRTFORGE_KV_PREFETCH=1
g 60 && ck ck_pre 50 TRTFORGE_CHECKS=prefill TRTFORGE_ATTN=cx8all TRTFORGE_ATTN_CS=1
g 45 && old k8_old2 "fp8 --kv-cache int8" 64 X=1
g 45 && bn k8_new2 "fp8 --kv-cache int8" 64 X=1
g 110 && ck ck_kvpf 100 TRTFORGE_CHECKS=kvpf TRTFORGE_KV_PREFETCH=1
ncs src_k8 attn_decode_cx8 401 fp8 --kv-cache int8
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
