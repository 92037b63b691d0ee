#!/usr/bin/env bash
# Session 15 call 6: tcg4 v2 with the batched epilogue (8 items per thread, residual loads before the stores):
# bench A/B at 64 rows (v2 nst 8 / 14 vs default), ncu of the eager tcg4 launches, the tcg4 checks (tiny fixture).
set -uo pipefail
C=.carry/s15d; B=$C/trtforge; O=/tmp/s15d; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 PATH=/usr/local/cuda/bin:$PATH
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp .carry/s13d/kcache/* $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s15d.tgz -C /tmp s15d; }
trap fin EXIT
date -u > $O/env.txt
bn() { local n=$1; shift
  env "${E[@]}" timeout 60 $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --precisions fp16 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "^\| (fp|int)|rror" $O/$n.log | cut -c1-150 | head -6; t; }
E=(TRTFORGE_TCG=4); bn v2 --batch-sizes 64
E=(TRTFORGE_TCG=4 TRTFORGE_TCG4_NST=8); bn v2_nst8 --batch-sizes 64
E=(); bn def --batch-sizes 64
timeout 100 env TRTFORGE_TCG=4 TRTFORGE_TCG4_NST=8 ncu --clock-control none -k regex:"tcg4_(qkv|o|gateup|down)_64" -c 4 --section SpeedOfLight --section LaunchStats $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --precisions fp16 --batch-sizes 64 > $O/ncu_v2.log 2>&1; echo "ncu v2 rc=$?"; t
grep -E "^  tcg4_|Duration|DRAM Throughput" $O/ncu_v2.log | head -20
T1=$(date +%s); TRTFORGE_TCG=4 TRTFORGE_CHECKS=tcg4 timeout 100 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_tcg4.log 2>&1; echo "check tcg4 rc=$? $(( $(date +%s) - T1 )) s"
head -6 $O/check_tcg4.log | cut -c1-150; grep -c PASS $O/check_tcg4.log; grep FAIL $O/check_tcg4.log | head -3; t
