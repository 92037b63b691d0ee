#!/usr/bin/env bash
# Session 58 call B: TRTFORGE_ATTN_ROPE=1 (RoPE + the KV append inside attn_decode_cx8: attn_decode_cx8r / cx8rh, no
# rope_append launch) — its checks against the CPU reference, then A/B rows at bs64 interleaved in separate processes.
# Carry: `KV="int8" KVP="fp16 fp8" bash scripts/gpu_carry.sh s58b` at the commit that adds the switch, plus the rope
# check list's modules precompiled with the same variables (see this session's README). CKT: the first check's timeout
# (call B: 100 s; next/run.sh gives it 200).
DL=${DL:-430}
NAME=${NAME:-s58b} . scripts/gpu_bench_lib.sh
# checks: 12-row decode passes with the kernel forced (clusters); A/B rows; then one block a (row, kv head) as at bs64,
# and (time left) the same list without the switch (rope_append + attn_decode_cx8: the errors to compare)
ck rope_on ${CKT:-100} TRTFORGE_CHECKS=rope TRTFORGE_ATTN=cx8all TRTFORGE_ATTN_ROPE=1
# A/B at bs64 (fp16; fp8 + int8 KV), interleaved; a row only with 35 s of the deadline left
b() { [ $(left) -gt 35 ] && bn "$@"; }
for r in 1 2; do
  b fp16_64_off$r fp16 64 X=1
  b fp16_64_on$r fp16 64 TRTFORGE_ATTN_ROPE=1
  b fp8k8_64_off$r "fp8 --kv-cache int8" 64 X=1
  b fp8k8_64_on$r "fp8 --kv-cache int8" 64 TRTFORGE_ATTN_ROPE=1
done
b fp8_64_on fp8 64 TRTFORGE_ATTN_ROPE=1
[ $(left) -gt 100 ] && ck rope_on_cs1 $(( $(left) - 20 )) TRTFORGE_CHECKS=rope TRTFORGE_ATTN=cx8all TRTFORGE_ATTN_CSF=1 TRTFORGE_ATTN_ROPE=1
[ $(left) -gt 100 ] && ck rope_off $(( $(left) - 20 )) TRTFORGE_CHECKS=rope TRTFORGE_ATTN=cx8all
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
