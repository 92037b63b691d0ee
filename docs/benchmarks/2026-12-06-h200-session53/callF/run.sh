#!/usr/bin/env bash
# Session 53 call F (carry s53e; its default module is the final kernels' code): ncu sections of one attn_decode_cx8
# launch of the fp16 bs64 decode step at prompt 512 (call D: 17.8 µs alone, 62 % of the copy rate). Written straight
# under $OUT so that a cut call still brings it back.
NAME=s53e . scripts/gpu_bench_lib.sh
timeout ${NT:-150} ncu --clock-control none --kernel-name attn_decode_cx8 --launch-skip 5 --launch-count 1 \
  --section SpeedOfLight --section MemoryWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables \
  --section WarpStateStats --section Occupancy --section LaunchStats --section SchedulerStats \
  --page details --print-units base $B bench --isolate never --model preset:tinyllama-1.1b --precisions fp16 \
  --batch-sizes 64 --input-lens 512 --output-len 2 --runs 1 --warmup 0 > $R/attn_ncu.txt 2> $R/attn_ncu.err
echo "ncu rc=$? $(t)"; tail -2 $R/attn_ncu.err | cut -c1-200
grep -E "Duration|DRAM Throughput|Memory Throughput|L1/TEX Hit|L2 Hit|Mem Busy|Max Bandwidth|Achieved Occupancy|Theoretical Occupancy|Eligible Warps|Issued Warp|No Eligible|Active Warps|Registers|Shared Memory Config|Dynamic Shared|Block Limit|Waves|Stall|sectors|Sectors" $R/attn_ncu.txt | head -60 | cut -c1-150
t
