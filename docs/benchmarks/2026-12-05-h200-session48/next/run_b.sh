#!/usr/bin/env bash
# Prepared in session 48, NOT RUN (≈ 200 s + start; after run_a.sh, in the same machine if it is still warm). carry
# [".carry/z"]: s48.tgz built with `LINEINFO=1 bash scripts/gpu_carry.sh s48` (the int4 module also with -lineinfo).
# Where the two-warpgroup wq launch waits (compare session 47 call 1's one-warpgroup profile,
# docs/benchmarks/2026-12-05-h200-session47/README.md): ncu --set full of layer 0's gate/up launch of the int4 bs64
# step with TRTFORGE_WQ_WG=2 (kernel wq_i4_4w2), source-level, then its per-SASS-instruction page as CSV
# (docs/benchmarks/2026-12-05-h200-session47/probe/sass_top.py summarizes it).
NAME=s48 . scripts/gpu_bench_lib.sh
timeout 150 env TRTFORGE_WQ_WG=2 TRTFORGE_NVRTC_LINEINFO=1 ncu --kernel-name regex:wq_i4 --launch-count 1 --set full \
  --import-source yes -o $R/wq_w2_gateup $B bench --isolate never --model preset:tinyllama-1.1b --precisions int4 \
  --batch-sizes 64 --input-lens 64 --output-len 2 --runs 1 --warmup 0 > $R/ncu_full.log 2>&1
echo "ncu full rc=$? $(t)"; tail -3 $R/ncu_full.log | cut -c1-200
ncu -i $R/wq_w2_gateup.ncu-rep --page source --csv --print-source sass > $R/wq_w2_sass.csv 2> $R/wq_w2_sass.err
echo "sass page rc=$? lines $(wc -l < $R/wq_w2_sass.csv)"; head -c 600 $R/wq_w2_sass.err
ncu -i $R/wq_w2_gateup.ncu-rep --page details > $R/wq_w2_details.txt 2>&1
grep -E "Function Name|Duration|Issue Slots Busy|No Eligible|Achieved Occupancy|Registers Per" $R/wq_w2_details.txt | head -12
python3 docs/benchmarks/2026-12-05-h200-session47/probe/sass_top.py $R/wq_w2_sass.csv 2>&1 | head -40
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
