#!/usr/bin/env bash
# Session 23 call 1 (carry .carry/s24: the stripped release binary of the working tree = 37d0383 + I4_OFS, and the
# kernel cache of the TinyLlama / SmolLM2 int4 modules for the default, TRTFORGE_I4_POST=1 and
# TRTFORGE_I4_POST=1 TRTFORGE_I4_OFS=1 builds). Questions: (1) a second pair for I4_POST (session 22 call 4: +4.5 %
# int4 bs1 in one pair); (2) does I4_OFS (the int4 pairs as 1024 + u / 64 + u straight from the and-or, the offsets'
# sums subtracted once per step: 5 instructions a word instead of 9) shorten the one-row int4 GEMVs further, and
# (3) do both hold the i4g128 checks (TinyLlama / SmolLM2 shapes, int4 g128, logits + greedy vs the CPU reference)?
set -uo pipefail
C=.carry/s24; B=$C/trtforge; O=/tmp/s24a; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp docs/benchmarks/2026-12-02-h200-session23/call1/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s24a.tgz -C /tmp s24a; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
ck() { local n=$1 lim=$2; shift 2; env "$@" timeout $lim $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_$n.log 2>&1
  echo "check $n rc=$?"; grep -E "PASS|FAIL|passed" $O/check_$n.log | cut -c1-170; t; }
nb() { local n=$1; shift; env "${E[@]}" timeout 90 $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --isolate never --json $O/$n.json "$@" > $O/$n.log 2>&1
  echo "$n rc=$?"; grep -E "^\| (fp|int)|rror" $O/$n.log | cut -c1-120; t; }
pair() { local s=$1
  E=(X=1); nb int4_def_$s --precisions int4 --batch-sizes 1,8
  E=(TRTFORGE_I4_POST=1); nb int4_post_$s --precisions int4 --batch-sizes 1,8
  E=(TRTFORGE_I4_POST=1 TRTFORGE_I4_OFS=1); nb int4_ofs_$s --precisions int4 --batch-sizes 1,8; }
pair a
ck i4g128_ofs 240 TRTFORGE_CHECKS=i4g128 TRTFORGE_I4_POST=1 TRTFORGE_I4_OFS=1
pair b
ck i4g128_def 200 TRTFORGE_CHECKS=i4g128
pair c
