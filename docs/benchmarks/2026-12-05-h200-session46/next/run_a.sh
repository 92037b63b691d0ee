#!/usr/bin/env bash
# Prepared in session 46, NOT RUN (≈ 430 s + start). carry [".carry/z"]: s47.tgz = `LINEINFO=1 bash scripts/gpu_carry.sh
# s47` (main with the 2-, 5- and 6-slot wq instances and TRTFORGE_NVRTC_LINEINFO; rebuild it the same way if it is gone or
# src/backend/cuda changed). What it asks, after session 46's calls 3–5 (docs/benchmarks/2026-12-05-h200-session46):
#  1. ring depth, int4 / int8 bs64, one bench process each (TRTFORGE_WQ_SHAPE; default first, as the same-call
#     control): session 44 saw gate/up lose 6 % going from 4 slots to 3, and call 4's stalls are mostly waits, so
#     (a) deeper rings — 5 slots (int4: still two blocks an SM) and 6 — and (b) the other way, 2-slot rings (45 / 51 KB,
#     four blocks an SM) with K splits that give every SM several independent tiles;
#  2. where a wq launch waits: ncu --set full on layer 0's gate/up launch of the int4 bs64 step, module with -lineinfo,
#     then the per-SASS-instruction page (stall samples per instruction) as CSV.
NAME=s47 . scripts/gpu_bench_lib.sh
S=TRTFORGE_WQ_SHAPE
bn i4_base int4 64 X=1
bn i4_g1x5 int4 64 $S=gateup:1x5
bn i4_g1x6 int4 64 $S=gateup:1x6
bn i4_d4x5 int4 64 $S=down:4x5
bn i4_d4x6 int4 64 $S=down:4x6
bn i4_g2x2 int4 64 $S=gateup:2x2
bn i4_d8x2 int4 64 $S=down:8x2
bn i4_g1x5_d4x6 int4 64 $S=gateup:1x5,down:4x6
bn i8_base int8 64 X=1
bn i8_d4x6 int8 64 $S=down:4x6
timeout 150 env TRTFORGE_NVRTC_LINEINFO=1 ncu --kernel-name regex:wq_i4 --launch-count 1 --set full --import-source yes \
  -o $R/wq_gateup $B bench --isolate never --model preset:tinyllama-1.1b --precisions int4 --batch-sizes 64 \
  --input-lens 64 --output-len 2 --runs 1 --warmup 0 > $R/ncu_full.log 2>&1
echo "ncu full rc=$? $(t)"; tail -3 $R/ncu_full.log | cut -c1-200
ncu -i $R/wq_gateup.ncu-rep --page source --csv --print-source sass > $R/wq_sass.csv 2> $R/wq_sass.err
echo "sass page rc=$? lines $(wc -l < $R/wq_sass.csv)"; head -c 600 $R/wq_sass.err
ncu -i $R/wq_gateup.ncu-rep --page details > $R/wq_details.txt 2>&1
grep -E "Duration|Issue Slots Busy|No Eligible|Achieved Occupancy" $R/wq_details.txt | head
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
