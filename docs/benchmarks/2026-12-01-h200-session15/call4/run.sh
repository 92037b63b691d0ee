#!/usr/bin/env bash
# Session 15 call 4: tcg4 v2 (warp-specialized, x by TMA with the 128-byte swizzle, TRTFORGE_TCG=4) in the engine:
# the tcg4 checks, then bench A/B against the default (cuBLAS on the f16 weights) at 16 / 32 / 64 rows.
set -uo pipefail
C=.carry/s15b; B=$C/trtforge; O=/tmp/s15b; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp .carry/s13d/kcache/* $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s15b.tgz -C /tmp s15b; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 100 $B bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "^\| (fp|int)|rror|tcg4|eager" $O/$n.log | sed -e 's/decode //' | cut -c1-150 | head -24; t; }
T1=$(date +%s); E=(TRTFORGE_TCG=4 TRTFORGE_TCG4_LOG=1); env "${E[@]}" timeout 70 $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --precisions fp16 --batch-sizes 64 --json $O/v2_first.json > $O/v2_first.log 2>&1; rc=$?
echo "v2 first rc=$rc $(( $(date +%s) - T1 )) s"; grep -E "^\| (fp|int)|rror|picked|eager" $O/v2_first.log | cut -c1-150 | head -20
if [ $rc -ne 0 ]; then TRTFORGE_TCG=4 TRTFORGE_CHECKS=tcg4 timeout 120 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_tcg4.log 2>&1; echo "check rc=$?"; grep -E "FAIL|passed|failed" $O/check_tcg4.log | tail; exit 1; fi
E=(TRTFORGE_TCG=4); bn v2_fp16_a tinyllama-1.1b --precisions fp16 --batch-sizes 16,32,64
E=(); bn def_fp16_a tinyllama-1.1b --precisions fp16 --batch-sizes 16,32,64
E=(TRTFORGE_TCG=4); bn v2_fp16_b tinyllama-1.1b --precisions fp16 --batch-sizes 16,32,64
E=(); bn def_fp16_b tinyllama-1.1b --precisions fp16 --batch-sizes 16,32,64
E=(TRTFORGE_TCG=4); for p in int8 fp8; do bn v2_$p tinyllama-1.1b --precisions $p --batch-sizes 64; done
T1=$(date +%s); TRTFORGE_TCG=4 TRTFORGE_CHECKS=tcg4 timeout 200 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_tcg4.log 2>&1; echo "check tcg4 rc=$? $(( $(date +%s) - T1 )) s"
grep -E "FAIL|passed|failed" $O/check_tcg4.log | tail -12; t
