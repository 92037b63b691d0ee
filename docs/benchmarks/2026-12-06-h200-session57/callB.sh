#!/usr/bin/env bash
# Session 57 call B (carry [".carry/z"]: `KV="int8" KVP="fp8" bash scripts/gpu_carry.sh s57b` at main after the
# TRTFORGE_FP8_GEMM_ROLES commit, plus its K precompiled with TRTFORGE_FP8_GEMM=1 for the fp8 bench (sm_90a + f8g) and
# for `TRTFORGE_CHECKS=f8g` with TRTFORGE_FP8_GEMM_ROLES=qkv,o).
# (1) #15 fp8 bs64: which GEMM for qkv / o beside wq's W8A16 gate/up / down — cuBLASLt f16 copies (default), the FP8
#     GEMM (W8A8, f8g at 9..=64 rows) for qkv or qkv + o, wq (W8A16) for qkv / qkv + o; fp16 beside; repeats interleaved.
# (2) the f8g check list with qkv + o on W8A8; (3) ncu SourceCounters of the 8-bit bs64 decode attention.
DL=${DL:-540}
NAME=s57b . scripts/gpu_bench_lib.sh
g() { [ $(left) -gt $1 ]; }
F8="TRTFORGE_FP8_GEMM=1"
bn f8_def fp8 64 X=1
bn f8_q fp8 64 $F8 TRTFORGE_FP8_GEMM_ROLES=qkv
bn f8_qo fp8 64 $F8 TRTFORGE_FP8_GEMM_ROLES=qkv,o
g 60 && bn f8_wq_qo fp8 64 TRTFORGE_WQ_ROLES=qkv,o,gateup,down
g 60 && bn f16 fp16 64 X=1
g 60 && bn f8_wq_q fp8 64 TRTFORGE_WQ_ROLES=qkv,gateup,down
g 60 && bn f8_def2 fp8 64 X=1
g 60 && bn f8_qo2 fp8 64 $F8 TRTFORGE_FP8_GEMM_ROLES=qkv,o
g 60 && bn f8_q2 fp8 64 $F8 TRTFORGE_FP8_GEMM_ROLES=qkv
g 160 && ck ck_f8g 140 TRTFORGE_CHECKS=f8g $F8 TRTFORGE_FP8_GEMM_ROLES=qkv,o
ncs src_k8 attn_decode_cx8 401 fp8 --kv-cache int8
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
