#!/usr/bin/env bash
# Session 23 call 2 (carry .carry/s25: the stripped release binary of the working tree = the new default with the int4
# group scale after the mma (I4_POST) + the opt-in TRTFORGE_TC_XCLAMP=1, and the kernel cache of TinyLlama fp16 / int4
# / int8 / fp8 and SmolLM2 fp16 / int4, default and XCLAMP). Question: do the tensor-core GEMVs' x loads without
# their per-lane predicate (a lane past the batch rows reads row 0 into accumulator columns no epilogue reads; the
# k < K test only where K is not a whole number of steps) shorten the one-row GEMVs (the per-tile SASS spends ≈ 5
# instructions per 16-byte x load on the predicate, its zero fill and a recomputed address), and do they hold the
# checks? Alternating processes, bs 1 and 8; then the checks with it.
set -uo pipefail
C=.carry/s25; B=$C/trtforge; R=docs/benchmarks/2026-12-02-h200-session23/call2; O=/tmp/s25a; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }; left() { echo $(( 560 - $(date +%s) + T0 )); }
fin() { cp $R/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s25a.tgz -C /tmp s25a; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
ck() { local n=$1 lim=$2; shift 2; env "$@" timeout $lim $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_$n.log 2>&1
  echo "check $n rc=$?"; grep -E "PASS|FAIL|passed" $O/check_$n.log | cut -c1-170; t; }
nb() { local n=$1 m=$2; shift 2; env "${E[@]}" timeout 60 $B bench --model preset:$m --input-lens 512 --output-len 128 --isolate never --json $O/$n.json "$@" > $O/$n.log 2>&1
  echo "$n rc=$?"; grep -E "^\| (fp|int)|rror" $O/$n.log | cut -c1-120; t; }
ab() { local s=$1 p=$2 m=${3:-tinyllama-1.1b} bs=${4:-1,8}
  E=(X=1); nb ${p}_def_$s $m --precisions $p --batch-sizes $bs
  E=(TRTFORGE_TC_XCLAMP=1); nb ${p}_xc_$s $m --precisions $p --batch-sizes $bs; }
ab a int4; ab a fp16; ab a int8
ab smol_a fp16 smollm2-135m 1
ck i4g128_xc 200 TRTFORGE_CHECKS=i4g128 TRTFORGE_TC_XCLAMP=1
[ $(left) -gt 100 ] && { ab b int4; ab b fp16; }
[ $(left) -gt 110 ] && ck udown16_xc 100 TRTFORGE_CHECKS=udown16 TRTFORGE_TC_XCLAMP=1
[ $(left) -gt 50 ] && ab b int8
true
