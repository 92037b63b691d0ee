#!/usr/bin/env bash
# Session 47 call 2 (carry [".carry/z"], s47b.tgz = `bash scripts/gpu_carry.sh s47b` at the commit that adds
# TRTFORGE_WQ_COPIES): 1. copyprobe.py (per-copy vs per-byte cost of a block's copy stream; 2-D vs 3-D x boxes);
# 2. the `wq` check list (every layer linear on wq, i.e. K-split clusters too) with the new 2-copy stage, in the
# background; 3. bench A/B, one process each, alternating: 2 copies a stage (default) vs TRTFORGE_WQ_COPIES=4.
NAME=s47b . scripts/gpu_bench_lib.sh
timeout 60 python3 docs/benchmarks/2026-12-05-h200-session47/probe/copyprobe.py $R/copyprobe.json > $R/copyprobe.log 2>&1
echo "copyprobe rc=$? $(t)"; cut -c1-170 $R/copyprobe.log
( timeout 330 env TRTFORGE_WQ=1 TRTFORGE_CHECKS=wq $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama \
  > $R/check_wq.log 2>&1; echo "check wq rc=$?" >> $R/check_wq.log ) &
C=TRTFORGE_WQ_COPIES=4
bn i4_c2 int4 64 X=1
bn i4_c4 int4 64 $C
bn i8_c2 int8 64 X=1
bn i8_c4 int8 64 $C
bn f8_c2 fp8 64 X=1
bn f8_c4 fp8 64 $C
bn f16 fp16 64 X=1
bn i4_c2b int4 32,64 X=1
bn i4_c4b int4 32,64 $C
wait; echo "checks done $(t)"; grep -E "PASS|FAIL|passed|rror|rc=" $R/check_wq.log | cut -c1-200
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
