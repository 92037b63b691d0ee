#!/usr/bin/env bash
# Session 39's prepared call C (NOT RUN; ≈ 330 s; after A and B): what A does not reach — the `wq` list (static
# engine, 40 / 12-row logits vs the CPU reference) with NORM on (tolerance: NORM rounds x' = f16(h · w) and scales
# after the sum, where the reference rounds f16(h · w / rms)), and with split-K row pairs (gate/up and qkv in 2 K
# slices: the DSMEM reduction's (r, r + 8) items; and NORM's Add epilogue with o / down at S 1: its row loop without
# a cluster), plus that shape's timing.
. docs/benchmarks/2026-12-04-h200-session39/next/common.sh
trap "tar czf $OUT/c.tgz -C /tmp r" EXIT
ALL="TRTFORGE_WQ_SWIGLU=1 TRTFORGE_WQ_ROPE=1 TRTFORGE_WQ_NORM=1"
bn i4_all_split int4 64 $ALL TRTFORGE_WQ_ROLES=qkv,o,gateup,down TRTFORGE_WQ_SHAPE=gateup:2x3,qkv:2x3
L=$(( 320 - $(date +%s) + T0 )); echo "checks get ${L} s"
( env $ALL TRTFORGE_WQ=1 TRTFORGE_CHECKS=wq timeout $L $B cuda-check --tinyllama > $R/check_wq_all.log 2>&1
  echo "check wq (SW + ROPE + NORM) rc=$? $(t)" > $R/c1.rc ) &
( env $ALL TRTFORGE_WQ=1 TRTFORGE_WQ_SHAPE=gateup:2x3,qkv:2x3,o:1x3,down:1x4 TRTFORGE_CHECKS=wq timeout $L $B \
    cuda-check --tinyllama > $R/check_wq_split.log 2>&1; echo "check wq (all, split / unsplit shapes) rc=$? $(t)" > $R/c2.rc ) &
wait
cat $R/c1.rc; grep -E "PASS|FAIL|passed|rror" $R/check_wq_all.log | cut -c1-240
cat $R/c2.rc; grep -E "PASS|FAIL|passed|rror" $R/check_wq_split.log | cut -c1-240
