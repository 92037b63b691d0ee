#!/usr/bin/env bash
# Session 39's prepared call A (NOT RUN; ≈ 330 s): are the epilogues of 52bb764 right, and does the first one pay?
# run: carry [".carry/z"], `bash docs/benchmarks/2026-12-04-h200-session39/next/run_a.sh`.
#  - SW   = TRTFORGE_WQ_SWIGLU=1: gate/up's wq writes silu(gate) · up (swiglu_v and the f32 y round trip gone);
#  - ROPE = TRTFORGE_WQ_ROPE=1 with qkv on wq: qkv's wq applies RoPE and appends K / V (rope_append gone).
#  1. int4 bs64: default vs SW;
#  2. the check lists with SW + ROPE: `wq` (TRTFORGE_WQ=1: every layer linear on wq, 40 / 12-row logits vs CPU, int8
#     greedy) — both epilogues do the same sums and the same per-element work as wq (f32 out) + swiglu_v /
#     rope_append, so the errors must EQUAL session 38's (int8 1.26e-3, int4 1.24e-3, fp8 1.20e-3 at 40 rows, int4
#     1.12e-3 at 12); `wqp` (paged, 64 sequences; qkv put on wq by TRTFORGE_WQ_ROLES) 10 / 10.
. docs/benchmarks/2026-12-04-h200-session39/next/common.sh
trap "tar czf $OUT/a.tgz -C /tmp r" EXIT
bn i4 int4 64 X=1
bn i4_sw int4 64 TRTFORGE_WQ_SWIGLU=1
L=$(( 320 - $(date +%s) + T0 )); echo "checks get ${L} s"
( TRTFORGE_WQ_SWIGLU=1 TRTFORGE_WQ_ROPE=1 TRTFORGE_WQ=1 TRTFORGE_CHECKS=wq timeout $L $B cuda-check --tinyllama \
    > $R/check_wq_epi.log 2>&1; echo "check wq (SW + ROPE) rc=$? $(t)" > $R/wq.rc ) &
( TRTFORGE_WQ_SWIGLU=1 TRTFORGE_WQ_ROPE=1 TRTFORGE_WQ_ROLES=qkv,gateup,down TRTFORGE_CHECKS=wqp timeout $L $B \
    cuda-check --tinyllama --paged > $R/check_wqp_epi.log 2>&1; echo "check wqp (SW + ROPE) rc=$? $(t)" > $R/wqp.rc ) &
wait
cat $R/wq.rc; grep -E "PASS|FAIL|passed|rror" $R/check_wq_epi.log | cut -c1-240
cat $R/wqp.rc; grep -E "PASS|FAIL|passed|rror" $R/check_wqp_epi.log | cut -c1-240
t
