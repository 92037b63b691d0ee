#!/usr/bin/env bash
# Session 15 call 5: why tcg4 v2 (TMA x) is 1.9x slower in the engine than cuBLAS at 64 rows while the prototype was
# at par: ring depth (TRTFORGE_TCG4_NST caps the slots: smem 231 KB -> ~70-135 KB), then ncu of the eager launches.
set -uo pipefail
C=.carry/s15b; B=$C/trtforge; O=/tmp/s15c; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 PATH=/usr/local/cuda/bin:$PATH
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp .carry/s13d/kcache/* $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp .carry/s15c/run.sh $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s15c.tgz -C /tmp s15c; }
trap fin EXIT
date -u > $O/env.txt
bn() { local n=$1; shift
  env "${E[@]}" timeout 60 $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --precisions fp16 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "^\| (fp|int)|rror|picked" $O/$n.log | cut -c1-150 | head -12; t; }
for nst in 4 8; do E=(TRTFORGE_TCG=4 TRTFORGE_TCG4_NST=$nst TRTFORGE_TCG4_LOG=1); bn v2_nst$nst --batch-sizes 64; done
E=(TRTFORGE_TCG=4 TRTFORGE_TCG4_NST=4 TRTFORGE_TCG4_S=1); bn v2_nst4_s1 --batch-sizes 64
timeout 150 env TRTFORGE_TCG=4 ncu --clock-control none -k regex:"tcg4_(qkv|o|gateup|down)_64" -c 8 --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --precisions fp16 --batch-sizes 64 > $O/ncu_v2.log 2>&1; echo "ncu v2 rc=$?"; t
grep -E "tcg4_|Duration|DRAM Throughput|L2 Cache Throughput|Registers Per|Grid Size|Block Size|Dynamic Shared|Warp Cycles Per Issued|Achieved Occupancy|Waves Per SM" $O/ncu_v2.log | head -90
