#!/usr/bin/env bash
# Session 26 call 3 (carry .carry/u3: main's binary at the commit in commit.txt and its kernel cache). The default
# one-row attention (`attn_decode_cg`, folded combine) runs with CG_STAGES = 8 ring stages per warp = 128 KB of shared
# memory per block, sized for bs8's long walks; at one row a block walks ≈ 1 tile per warp. Is that footprint what keeps
# the o GEMV's and gate/up's early blocks off its SMs (session 24's trace: o blocks entering after the attention ends)?
# Alternating processes, TRTFORGE_CG_STAGES 8 (default) vs 2 (and 4), bench bs 1 and 8; then udown16 with 2 stages.
set -uo pipefail
C=.carry/u3; B=$C/trtforge; D=docs/benchmarks/2026-12-03-h200-session26; O=/tmp/u3; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/K/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }; left() { echo $(( 570 - $(date +%s) + T0 )); }
fin() { cp $D/call3/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/u3.tgz -C /tmp u3; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; head -1 $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
b() { local p=$1 s=$2 tag=$3; [ $(left) -lt 45 ] && return; TRTFORGE_CG_STAGES=$s timeout 60 $B bench --model preset:tinyllama-1.1b --precisions $p --batch-sizes 1,8 --input-lens 512 --output-len 128 --isolate never --json $O/${p}_s${s}_$tag.json > $O/${p}_s${s}_$tag.log 2>&1
  echo "$p stages $s ($tag) rc=$? $(grep -E "^\| $p" $O/${p}_s${s}_$tag.log | awk -F'|' '{printf "bs%s %s tok/s; ", $3, $6}' | tr -s ' ')"; }
for p in fp16 int4; do b $p 8 a; b $p 2 a; b $p 8 b; b $p 2 b; done; t
[ $(left) -gt 120 ] && { TRTFORGE_CG_STAGES=2 TRTFORGE_CHECKS=udown16 timeout 100 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_udown16_s2.log 2>&1
  echo "udown16 stages 2 rc=$?"; grep -E "PASS|FAIL|passed" $O/check_udown16_s2.log | cut -c1-170; t; }
b fp16 4 a; b int8 8 a; b int8 2 a; b int4 4 a; t
true
