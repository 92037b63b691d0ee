#!/usr/bin/env bash
# Session 15 call 10: ncu durations of the fixed tcg4 v2 kernels in the engine (eager launches) at 64 rows.
set -uo pipefail
C=.carry/s15f; B=$C/trtforge; O=/tmp/s15g; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 PATH=/usr/local/cuda/bin:$PATH
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
fin() { cp .carry/s15g/run.sh $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s15g.tgz -C /tmp s15g; }
trap fin EXIT
timeout 80 env TRTFORGE_TCG=4 ncu --clock-control none -k regex:"tcg4_(qkv|o|gateup|down|head)_64" -c 5 --section SpeedOfLight --section LaunchStats $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --precisions fp16 --batch-sizes 64 > $O/ncu.log 2>&1; echo "ncu rc=$?"
grep -E "^  tcg4_|Duration|DRAM Throughput" $O/ncu.log | head -20
