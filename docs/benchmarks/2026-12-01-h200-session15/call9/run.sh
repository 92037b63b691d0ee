#!/usr/bin/env bash
# Session 15 call 9: tcg4 v2 without the serialized wgmmas (whole stages, no run-time wgmma count):
# bench A/B at 64 rows (v2 nst 8 / 14 vs default), ncu of the eager tcg4 launches, the tcg4 checks (tiny fixture).
set -uo pipefail
C=.carry/s15f; B=$C/trtforge; O=/tmp/s15f; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 PATH=/usr/local/cuda/bin:$PATH
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp .carry/s13d/kcache/* $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s15f.tgz -C /tmp s15f; }
trap fin EXIT
date -u > $O/env.txt
bn() { local n=$1; shift
  env "${E[@]}" timeout 60 $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --precisions fp16 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "^\| (fp|int)|rror" $O/$n.log | cut -c1-150 | head -6; t; }
E=(TRTFORGE_TCG=4); bn v2_a --batch-sizes 16,32,64
E=(); bn def_a --batch-sizes 16,32,64
E=(TRTFORGE_TCG=4); bn v2_b --batch-sizes 16,32,64
E=(); bn def_b --batch-sizes 16,32,64
E=(TRTFORGE_TCG=4 TRTFORGE_TCG4_NST=8); bn v2_nst8 --batch-sizes 64
T1=$(date +%s); TRTFORGE_TCG=4 TRTFORGE_CHECKS=tcg4 timeout 100 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_tcg4.log 2>&1; echo "check tcg4 rc=$? $(( $(date +%s) - T1 )) s"
head -6 $O/check_tcg4.log | cut -c1-150; grep -c PASS $O/check_tcg4.log; grep FAIL $O/check_tcg4.log | head -3; t
