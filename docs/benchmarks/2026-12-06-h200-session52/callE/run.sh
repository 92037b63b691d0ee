#!/usr/bin/env bash
# Session 52, call E (carry s51c: the final src/): deeper wq rings inside the step (never measured there; gate/up with
# 3 slots lost 6 % in session 44, so more may gain), and qkv alone on wq — A/B interleaved with the default, one lease.
NAME=s51c . scripts/gpu_bench_lib.sh
bn i4_a int4 64 X=1
bn i4_gu5 int4 64 TRTFORGE_WQ_SHAPE=gateup:1x5
bn i4_dn5 int4 64 TRTFORGE_WQ_SHAPE=down:4x5
bn i4_dn6 int4 64 TRTFORGE_WQ_SHAPE=down:4x6
bn i4_b int4 64 X=1
bn i4_gu5dn6 int4 64 TRTFORGE_WQ_SHAPE=gateup:1x5,down:4x6
bn i4_qkv int4 64 TRTFORGE_WQ_ROLES=qkv,gateup,down
bn i8_a int8 64 X=1
bn i8_dn6 int8 64 TRTFORGE_WQ_SHAPE=down:4x6
bn i4_c int4 64 X=1
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
