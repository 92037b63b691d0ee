#!/usr/bin/env bash
# Session 39's prepared call C (NOT RUN; ≈ 330 s; after A and B, if their results call for it): the epilogues' paths
# that A does not reach — split-K row pairs (gate/up and qkv in 2 K slices: the DSMEM reduction's (r, r + 8) items)
# in the `wq` list (tolerance, not equality: the split changes the summation order), and the shape's timing.
. docs/benchmarks/2026-12-04-h200-session39/next/common.sh
trap "tar czf $OUT/c.tgz -C /tmp r" EXIT
bn i4_epi_gu2 int4 64 TRTFORGE_WQ_SWIGLU=1 TRTFORGE_WQ_ROPE=1 TRTFORGE_WQ_ROLES=qkv,gateup,down TRTFORGE_WQ_SHAPE=gateup:2x3
L=$(( 320 - $(date +%s) + T0 )); echo "check gets ${L} s"
TRTFORGE_WQ_SWIGLU=1 TRTFORGE_WQ_ROPE=1 TRTFORGE_WQ=1 TRTFORGE_WQ_SHAPE=gateup:2x3,qkv:2x3 TRTFORGE_CHECKS=wq timeout $L \
  $B cuda-check --tinyllama > $R/check_wq_split.log 2>&1
echo "check wq (SW + ROPE, split K) rc=$? $(t)"; grep -E "PASS|FAIL|passed|rror" $R/check_wq_split.log | cut -c1-240
