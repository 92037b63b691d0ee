#!/usr/bin/env bash
# Session 56, call E (carry [".carry/z"] = two builds: s56b = `KV="int8" KVP="fp16 fp8" bash scripts/gpu_carry.sh s56b`
# at 408f399 + the binary of f5e14b5 (the kvpf check) (the old 8-bit tile loop, rmsnorm_bp), s56c = the same at 838a5e9 (the 8-bit tile loop
# with its offsets kept in registers) plus the check lists' modules below, precompiled into its K):
# (1) the new 8-bit tile loop: fp8 + int8 KV bs64 old (s56b) / new (s56c), interleaved, and its checks with the bs64
#     kernel forced at every batch (`TRTFORGE_ATTN=cx8all`: the attn list's tiny32 f16 / int8 / fp8 caches; the prefill
#     list with `TRTFORGE_ATTN_CS=1`, one block a sequence: several tiles a warp);
# (2) TRTFORGE_KV_PREFETCH=1 (opt-in): fp16 and fp8 + int8 KV bs64 off / on, and `TRTFORGE_CHECKS=kvpf` with it on;
# (3) ncu SourceCounters of the new 8-bit launch (where its warps wait, per SASS instruction).
DL=${DL:-190}
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
