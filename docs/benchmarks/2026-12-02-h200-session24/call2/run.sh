#!/usr/bin/env bash
# Session 24 call 2 (carry .carry/s29: call 1's kernels + the paged check's near-tie rule and TRTFORGE_CHECKS=tlkv8).
# Call 1's trace: the o GEMV's first step after griddepcontrol.wait (one L2 load of the splits' (max, sum), a few
# shuffles) takes ≈ 2 µs against ≈ 0.9 µs for the attention's q loads — while the next kernel (gate/up), launched by
# o's early trigger, streams its weights. (1) per-kind trigger sweep in one process each (TRTFORGE_BS1_AB, digits =
# qkv attn o gateup down head; 0 after the main loop, 1 at entry, 2 after the wait), fp16 / int4 / int8 at one row;
# (2) the TinyLlama int8-cache paged checks (call 1: "prefill in chunks of 5" prefix 14 of 16) with the near-tie rule,
# on the default build and on TRTFORGE_TC_XCLAMP=0 (the x loads before session 23).
set -uo pipefail
C=.carry/s29; B=$C/trtforge; D=docs/benchmarks/2026-12-02-h200-session24/call2; O=/tmp/s29a; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $D/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s29a.tgz -C /tmp s29a; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
ab() { local p=$1 v=$2; TRTFORGE_BS1_AB="$v" timeout 150 $B bench --model preset:tinyllama-1.1b --precisions $p --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never > $O/ab_$p.log 2>&1
  echo "ab $p rc=$?"; grep -E "variant|rror" $O/ab_$p.log | sed 's/decode //; s/ tok.s (/ /; s/ ms.step; tokens == the first variant.s)/ ms =/' | cut -c1-120; t; }
ab fp16 "default,default+trig=110111,default+trig=112111,default+trig=101111,default+trig=121111,default+trig=111011,default+trig=111101,default+trig=011111,default+trig=100111,default"
ab int4 "default,default+trig=220222,default+trig=221222,default+trig=202222,default+trig=212222,default+trig=222022,default+trig=222202,default+trig=022222,default+trig=200222,default"
ab int8 "default,default+trig=220222,default+trig=221222,default+trig=202222,default+trig=200222,default"
ck() { local n=$1; shift; env "$@" TRTFORGE_CHECKS=tlkv8 timeout 150 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama --paged > $O/check_$n.log 2>&1
  echo "check $n rc=$?"; grep -E "PASS|FAIL|passed" $O/check_$n.log | cut -c1-220; t; }
ck tlkv8
ck tlkv8_xclamp0 TRTFORGE_TC_XCLAMP=0
