#!/usr/bin/env bash
# Session 26 call 4 (carry .carry/u4: main + the opt-in bs1 switch `solo=DDDDDD` — one-row tensor-core GEMVs launched
# with 116 KB of dynamic shared memory they do not use, so one block fits an SM; digit 2 also caps the grid at the SM
# count, tiles dealt round-robin; kinds qkv attn o gateup down head — and call 3's kernel cache, same kernels.cu).
# Session 24's trace: qkv's 160 blocks ran on ≈ 83 SMs, o's 128 on ≈ 74 (two a SM), down's 128 on 128.
# (1) one process each, TRTFORGE_BS1_AB, fp16 then int4 at one row; (2) udown16 / i4g128 checks with the best variant.
set -uo pipefail
C=.carry/u4; B=$C/trtforge; D=docs/benchmarks/2026-12-03-h200-session26; O=/tmp/u4; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/K/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }; left() { echo $(( 570 - $(date +%s) + T0 )); }
fin() { cp $D/call4/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/u4.tgz -C /tmp u4; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; head -1 $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
V=default,default+solo=200000,default+solo=100000,default+solo=001000,default+solo=000010,default+solo=000002,default+solo=201000,default
for p in fp16 int4; do
  TRTFORGE_BS1_AB=$V timeout 150 $B bench --model preset:tinyllama-1.1b --precisions $p --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never > $O/ab_$p.log 2>&1
  echo "ab $p rc=$?"; grep -E "variant|rror|panick" $O/ab_$p.log | sed 's/decode //; s/ tok.s (/ /; s/ ms.step; tokens == the first variant.s)/ ms =/' | cut -c1-130; t
done
W=${SOLO_CHECK:-default+solo=201000}
[ $(left) -gt 100 ] && { TRTFORGE_BS1=$W TRTFORGE_CHECKS=udown16 timeout 90 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_udown16.log 2>&1
  echo "udown16 $W rc=$?"; grep -E "PASS|FAIL|passed" $O/check_udown16.log | cut -c1-170; t; }
[ $(left) -gt 100 ] && { TRTFORGE_BS1=$W TRTFORGE_CHECKS=udown4 timeout 90 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_udown4.log 2>&1
  echo "udown4 $W rc=$?"; grep -E "PASS|FAIL|passed" $O/check_udown4.log | cut -c1-170; t; }
true
