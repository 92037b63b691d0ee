#!/usr/bin/env bash
# Session 39's prepared call A (NOT RUN; ≈ 330 s): are the epilogues of 1d1070a right, and do they pay?
# run: carry [".carry/z"], `bash docs/benchmarks/2026-12-04-h200-session39/next/run_a.sh`.
#  - SW   = TRTFORGE_WQ_SWIGLU=1: gate/up's wq writes silu(gate) · up (swiglu_v and the f32 y round trip gone);
#  - ROPE = TRTFORGE_WQ_ROPE=1 with qkv on wq: qkv's wq applies RoPE and appends K / V (rope_append gone);
#  - NORM = TRTFORGE_WQ_NORM=1 with o / down and qkv / gate/up on wq: o / down write x' and the rows' Σ h², the next
#    GEMM applies the RMS scale (the two rmsnorm_b launches a layer gone).
#  1. int4 bs64: default vs SW + ROPE + NORM (every layer linear on wq);
#  2. `wq` list (TRTFORGE_WQ=1: 40 / 12-row logits vs CPU, int8 greedy) with SW + ROPE: both do the sums and the
#     per-element work of wq (f32 out) + swiglu_v / rope_append, so the errors must EQUAL session 38's (int8 1.26e-3,
#     int4 1.24e-3, fp8 1.20e-3 at 40 rows, int4 1.12e-3 at 12);
#  3. `wqp` list (paged, 64 sequences: vs CPU, vs the static engine, chunked, among 63, sampled) with SW + ROPE + NORM
#     (NORM moves a rounding point: tolerance, 10 / 10).
. docs/benchmarks/2026-12-04-h200-session39/next/common.sh
trap "tar czf $OUT/a.tgz -C /tmp r" EXIT
ALL="TRTFORGE_WQ_SWIGLU=1 TRTFORGE_WQ_ROPE=1 TRTFORGE_WQ_NORM=1 TRTFORGE_WQ_ROLES=qkv,o,gateup,down"
bn i4 int4 64 X=1
bn i4_all int4 64 $ALL
L=$(( 320 - $(date +%s) + T0 )); echo "checks get ${L} s"
( TRTFORGE_WQ_SWIGLU=1 TRTFORGE_WQ_ROPE=1 TRTFORGE_WQ=1 TRTFORGE_CHECKS=wq timeout $L $B cuda-check --tinyllama \
    > $R/check_wq_epi.log 2>&1; echo "check wq (SW + ROPE) rc=$? $(t)" > $R/wq.rc ) &
( env $ALL TRTFORGE_CHECKS=wqp timeout $L $B cuda-check --tinyllama --paged > $R/check_wqp_all.log 2>&1
  echo "check wqp (SW + ROPE + NORM) rc=$? $(t)" > $R/wqp.rc ) &
wait
cat $R/wq.rc; grep -E "PASS|FAIL|passed|rror" $R/check_wq_epi.log | cut -c1-240
cat $R/wqp.rc; grep -E "PASS|FAIL|passed|rror" $R/check_wqp_all.log | cut -c1-240
t
