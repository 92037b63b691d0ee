#!/usr/bin/env bash
# Session 27 call 1 (carry .carry/d1: the working tree's binary with the opt-in TC_DYN and its kernel cache). Does
# handing gate/up's and the head's tiles after the first out by a counter (TRTFORGE_TC_DYN=1) shorten their spans?
# Alternating processes, bench bs 1 and 8: fp16 and int8 default vs TC_DYN; int4 default (PF2) vs TC_PF2=0 vs TC_PF2=0
# + TC_DYN (the PF2 instances keep static tiles). Between the two rounds the `udown` checks (every format, TinyLlama
# shape, logits + greedy vs the CPU reference, 1 and 3 sequences) with TC_DYN=1 TC_PF2=0.
set -uo pipefail
C=.carry/d1; B=$C/trtforge; D=docs/benchmarks/2026-12-03-h200-session27; O=/tmp/d1; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/K/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }; left() { echo $(( 570 - $(date +%s) + T0 )); }
fin() { cp $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/d1.tgz -C /tmp d1; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; head -1 $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
b() { local p=$1 tag=$2; shift 2; [ $(left) -lt 40 ] && return; env "$@" timeout 60 $B bench --model preset:tinyllama-1.1b --precisions $p --batch-sizes 1,8 --input-lens 512 --output-len 128 --isolate never --json $O/${p}_$tag.json > $O/${p}_$tag.log 2>&1
  echo "$p $tag rc=$? $(grep -E "^\| $p" $O/${p}_$tag.log | awk -F'|' '{printf "bs%s %s tok/s; ", $3, $6}' | tr -s ' ')"; }
round() { local r=$1
  b fp16 def_$r X=1; b fp16 dyn_$r TRTFORGE_TC_DYN=1
  b int8 def_$r X=1; b int8 dyn_$r TRTFORGE_TC_DYN=1
  b int4 def_$r X=1; b int4 pf0_$r TRTFORGE_TC_PF2=0; b int4 pf0dyn_$r TRTFORGE_TC_PF2=0 TRTFORGE_TC_DYN=1; t; }
round a
TRTFORGE_TC_DYN=1 TRTFORGE_TC_PF2=0 TRTFORGE_CHECKS=udown timeout 150 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_udown_dyn.log 2>&1
echo "udown (TC_DYN=1 TC_PF2=0) rc=$?"; grep -E "PASS|FAIL|passed" $O/check_udown_dyn.log | cut -c1-170; t
round b
true
