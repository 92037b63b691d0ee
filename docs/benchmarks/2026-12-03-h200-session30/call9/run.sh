#!/usr/bin/env bash
# Session 30 call 9 (the last device seconds): Nsight Compute stall reasons of the ENGINE's one-row decode GEMVs — one
# layer's tc_f16_* launches (qkv, o with the attention combine, gate/up, down) inside the decode graph — for the next
# session. Carry .carry/s30a (call1/prep.sh). Works only where ncu reads the counters (Firecracker).
set -uo pipefail
C=.carry/s30a; O=/tmp/s30i; mkdir -p $O
trap 'tar czf ${OUT:-/tmp}/s30i.tgz -C /tmp s30i' EXIT
export PATH=/usr/local/cuda/bin:$PATH LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/K/* /tmp/kc/ 2>/dev/null
{ date -u; uname -r; } > $O/env.txt; cat $O/env.txt
timeout 110 ncu --clock-control none -k regex:tc_f16 --launch-skip 300 --launch-count 4 --section WarpStateStats --section LaunchStats \
  --section SourceCounters -o $O/eng $C/trtforge bench --isolate never --precisions fp16 --batch-sizes 1 --input-lens 512 \
  --output-len 16 --model preset:tinyllama-1.1b > $O/ncu.log 2>&1; echo "ncu rc=$?"; grep -E "PROF|rror" $O/ncu.log | tail -8
timeout 40 ncu -i $O/eng.ncu-rep --page details --print-details all > $O/details.txt 2>&1; echo "details rc=$?"
grep -E "^  tc_f16|Stall (Barrier|Long Scoreboard|Wait|Branch|Short|Membar|No Instruction|Not Selected|Math|MIO|LG)|Warp Cycles Per Issued|Duration|Registers Per|Grid Size" $O/details.txt | head -80
true
