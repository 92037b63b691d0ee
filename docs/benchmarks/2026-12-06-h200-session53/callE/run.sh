#!/usr/bin/env bash
# Session 53 call E (carry s53e: `bash scripts/gpu_carry.sh s53e` at the TRTFORGE_ACX8_ST commit, plus the
# TRTFORGE_ACX8_ST=3 modules of the fp16 / int4 TinyLlama-shape bench precompiled into its cache, see the README):
# attn_decode_cx8 (the bs64 decode attention, 62 % of the copy rate alone in call D) with a 3-stage f16 ring,
# A/B interleaved in the step; then its checks (the TRTFORGE_ACX8_ST=3 build forced at every batch size).
DL=${DL:-400}
NAME=s53e . scripts/gpu_bench_lib.sh
bn f16_a fp16 64 X=1
bn f16_st3 fp16 64 TRTFORGE_ACX8_ST=3
bn i4_a int4 64 X=1
bn i4_st3 int4 64 TRTFORGE_ACX8_ST=3
bn f16_b fp16 64 X=1
bn f16_st3b fp16 64 TRTFORGE_ACX8_ST=3
ck() {  # ck NAME TIMEOUT ENV=V..
  local n=$1 to=$2; shift 2
  env "$@" timeout $to $B cuda-check --tiny tests/fixtures/tiny_llama > $R/$n.log 2>&1
  echo "$n rc=$? $(t)"; grep -E "FAIL|passed|rror" $R/$n.log | tail -4 | cut -c1-160
}
[ $(left) -gt 60 ] && ck attn_st3 $(( $(left) - 15 )) TRTFORGE_ACX8_ST=3 TRTFORGE_ATTN=cx8all TRTFORGE_CHECKS=attn
[ $(left) -gt 60 ] && ck prefill_st3 $(( $(left) - 10 )) TRTFORGE_ACX8_ST=3 TRTFORGE_ATTN=cx8all TRTFORGE_ATTN_CS=1 TRTFORGE_CHECKS=prefill
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
