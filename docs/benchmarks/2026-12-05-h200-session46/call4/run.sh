#!/usr/bin/env bash
# Session 46 call 4 (carry [".carry/z"], s46.tgz): why wq is slow at bs64 — ncu sections (stall reasons, pipes,
# memory) of the first two wq launches of the int4 bs64 decode step (layer 0's gate/up and down), MT 1 (the default)
# then MT 2 (TRTFORGE_WQ_M=128). Only the filtered kernels are replayed, so the engine loads at normal speed.
set -uo pipefail
mkdir -p /tmp/cz; [ -x /tmp/cz/s46/trtforge ] || { tar xzf .carry/z/s46.tgz -C /tmp/cz && gunzip -f /tmp/cz/s46/trtforge.gz \
  && chmod +x /tmp/cz/s46/trtforge; } || exit 3
B=/tmp/cz/s46/trtforge; R=$OUT/r4; mkdir -p $R
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/cz/s46/K
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
S="--section SpeedOfLight --section WarpStateStats --section SchedulerStats --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section Occupancy --section LaunchStats --metrics regex:smsp__average_warps_issue_stalled_.*_per_issue_active\\.ratio"
for v in m64 m128; do
  E=X=1; [ $v = m128 ] && E=TRTFORGE_WQ_M=128
  timeout 130 env $E ncu --kernel-name regex:wq --launch-count 2 $S $B bench --isolate never \
    --model preset:tinyllama-1.1b --precisions int4 --batch-sizes 64 --input-lens 64 --output-len 2 --runs 1 --warmup 0 \
    > $R/ncu_$v.txt 2> $R/ncu_$v.err
  echo "ncu $v rc=$? $(t)"
  grep -E "wq|Duration|Throughput|Executed Ipc|Issue Slots Busy|No Eligible|Warp Cycles Per Issued|Stall|Achieved Occupancy|Registers Per|Waves Per|L2 Hit|Mem Pipes|One or More|stalled" $R/ncu_$v.txt | grep -v " 0$" | cut -c1-150 | head -90
done
t
