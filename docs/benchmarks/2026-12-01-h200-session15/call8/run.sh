#!/usr/bin/env bash
# Session 15 call 8: where tcg4_o_64 (v2) spends its time in the engine: ncu stall sampling per SASS instruction + raw stall metrics.
set -uo pipefail
C=.carry/s15d; B=$C/trtforge; O=/tmp/s15e; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 PATH=/usr/local/cuda/bin:$PATH
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
fin() { cp .carry/s15e/run.sh $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s15e.tgz -C /tmp s15e; }
trap fin EXIT
A="bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --precisions fp16 --batch-sizes 64"
timeout 100 env TRTFORGE_TCG=4 TRTFORGE_TCG4_NST=8 ncu --clock-control none -k regex:"tcg4_o_64" -c 1 --section WarpStateStats --section SourceCounters --page source --print-source sass --csv $B $A > $O/o_src.csv 2>$O/o_src.err; echo "ncu src rc=$?"
timeout 100 env TRTFORGE_TCG=4 TRTFORGE_TCG4_NST=8 ncu --clock-control none -k regex:"tcg4_o_64" -c 1 --section WarpStateStats --section SchedulerStats --page raw --csv $B $A > $O/o_raw.csv 2>$O/o_raw.err; echo "ncu raw rc=$?"
ls -la $O; tr ',' '\n' < $O/o_raw.csv | grep -n stall | head -5
