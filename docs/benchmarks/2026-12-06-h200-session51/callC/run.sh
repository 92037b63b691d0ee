#!/usr/bin/env bash
# Session 51, call C (carry [".carry/z"]: s51.tgz = `WIDE=1 LINEINFO=1 bash scripts/gpu_carry.sh s51` at ac1488e plus
# launch.rs's 64-row x tensor map; s50c.tgz = the same without it; wqs_gateup.ncu-rep = call B's ncu of wqs_i4_4_3).
# Priority order; DL=SECONDS (default 540).
#  1. `TRTFORGE_CHECKS=wqk` (default kernels only): 40 rows with x's map over 64 rows against the zero-filled map;
#  2. bench int4 / int8 / fp8 at bs40 (every wq launch at 40 rows), new (s51) and old (s50c) interleaved;
#  3. call B's ncu report as CSV (details + raw warp-state metrics), for where a wqs stage's time goes;
#  4. the `wq` check list (the 40- and 12-sequence TinyLlama logits against the CPU) on s51, for the time left.
NAME=s50c . scripts/gpu_bench_lib.sh
B0=$B
NAME=s51 . scripts/gpu_bench_lib.sh
DL=${DL:-540}
left() { echo $(( DL - ($(date +%s) - T0) )); }
timeout 60 env TRTFORGE_CHECKS=wqk $B cuda-check --tiny tests/fixtures/tiny_llama > $R/wqk.log 2>&1
echo "wqk rc=$? $(t)"; grep -E "  wq |PASS|FAIL|rror|passed" $R/wqk.log | cut -c1-160
# s50c.tgz here carries only its binary: its kernels are s51's (same source, same cache keys)
bo() { local n=$1; shift; B=$B0 bn "$n" "$@"; }
for p in int4 int8 fp8; do
  bn ${p}_40_new $p 40 X=1
  bo ${p}_40_old $p 40
done
if [ $(left) -gt 60 ]; then
  ncu --import .carry/z/wqs_gateup.ncu-rep --page details --csv > $R/wqs_details.csv 2> $R/wqs_ncu.err
  ncu --import .carry/z/wqs_gateup.ncu-rep --page raw --csv > $R/wqs_raw.csv 2>> $R/wqs_ncu.err
  echo "ncu export rc=$? $(t)"; grep -iE "Duration|Warp Cycles Per Issued|Issue Slots Busy|Compute \(SM\) Throughput|Memory Throughput|Stall" $R/wqs_details.csv | cut -c1-200 | head -30
fi
l=$(left)
if [ $l -gt 30 ]; then
  timeout $l env TRTFORGE_CHECKS=wq $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $R/check_wq.log 2>&1
  echo "check wq (${l} s) rc=$? $(t)"; grep -E "PASS|FAIL|passed|rror" $R/check_wq.log | cut -c1-200
fi
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
