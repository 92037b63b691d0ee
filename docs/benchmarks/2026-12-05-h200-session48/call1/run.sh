#!/usr/bin/env bash
# Session 48 call 1: next/run_a.sh's benches + next/run_b.sh's ncu in one machine start, then the wq check with
# TRTFORGE_WQ_WG=2 for whatever time is left. carry [".carry/z"]: s48.tgz = `LINEINFO=1 bash scripts/gpu_carry.sh s48`
# at d74a135 (kernels as 8b22b25).
#  1. bench A/B, one process each, alternating: one consumer warpgroup a wq block (default) vs TRTFORGE_WQ_WG=2,
#     int4 bs32 + bs64, int8 / fp8 bs64, int4 again; fp16 bs64 as the same-call ratio base;
#  2. ncu --set full (source-level, -lineinfo module) of layer 0's int4 gate/up launch with TRTFORGE_WQ_WG=2, its
#     per-SASS page, the summary by session 47's sass_top.py;
#  3. the `wq` check list with TRTFORGE_WQ_WG=2 (every layer linear on wq), not in the background, until 575 s.
NAME=s48 . scripts/gpu_bench_lib.sh
W=TRTFORGE_WQ_WG=2
bn i4_w1 int4 32,64 X=1
bn i4_w2 int4 32,64 $W
bn i8_w2 int8 64 $W
bn i8_w1 int8 64 X=1
bn f8_w1 fp8 64 X=1
bn f8_w2 fp8 64 $W
bn i4_w2b int4 64 $W
bn i4_w1b int4 64 X=1
bn f16 fp16 64 X=1
timeout 150 env $W TRTFORGE_NVRTC_LINEINFO=1 ncu --kernel-name regex:wq_i4 --launch-count 1 --set full \
  --import-source yes -o $R/wq_w2_gateup $B bench --isolate never --model preset:tinyllama-1.1b --precisions int4 \
  --batch-sizes 64 --input-lens 64 --output-len 2 --runs 1 --warmup 0 > $R/ncu_full.log 2>&1
echo "ncu full rc=$? $(t)"; tail -3 $R/ncu_full.log | cut -c1-200
ncu -i $R/wq_w2_gateup.ncu-rep --page source --csv --print-source sass > $R/wq_w2_sass.csv 2> $R/wq_w2_sass.err
echo "sass page rc=$? lines $(wc -l < $R/wq_w2_sass.csv)"; head -c 300 $R/wq_w2_sass.err
ncu -i $R/wq_w2_gateup.ncu-rep --page details > $R/wq_w2_details.txt 2>&1
grep -E "Function Name|Duration|Issue Slots Busy|No Eligible|Achieved Occupancy|Registers Per" $R/wq_w2_details.txt | head -12
python3 docs/benchmarks/2026-12-05-h200-session47/probe/sass_top.py $R/wq_w2_sass.csv 30 2>&1 | cut -c1-230 | head -34
left=$(( 575 - ($(date +%s) - T0) ))
if [ $left -gt 20 ]; then
  timeout $left env TRTFORGE_WQ=1 $W TRTFORGE_CHECKS=wq $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama \
    > $R/check_wq_wg2.log 2>&1; echo "check wq (${left} s) rc=$? $(t)"
  grep -E "PASS|FAIL|passed|rror" $R/check_wq_wg2.log | cut -c1-200
fi
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
