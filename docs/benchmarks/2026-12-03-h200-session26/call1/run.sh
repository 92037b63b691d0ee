#!/usr/bin/env bash
# Session 26 call 1 (carry .carry/u1: the binary with attn_o_f16 — session 25's one-row attention + o projection in one
# launch, bs1 switch `ao`, opt-in — now with R row groups of o per kv head (grid (cs, n_kv, R), the R clusters of a kv
# head compute the same attention) and `ao=CxR` to pick the shape; NVRTC kernel cache).
# (1) TRTFORGE_CHECKS=ao with the default shape (tiny32 2x1, TinyLlama 8x4, SmolLM2 3x3): logits + greedy vs the CPU
#     reference; (2) one process each (TRTFORGE_BS1_AB): TinyLlama fp16 bs1 default vs ao shapes, SmolLM2 fp16 bs1;
# (3) the tile trace of one fp16 bs1 step with ao (chain.py of session 24); (4) the check with ao=16x1 (session 25's).
set -uo pipefail
C=.carry/u1; B=$C/trtforge; D=docs/benchmarks/2026-12-03-h200-session26; O=/tmp/u1; mkdir -p $O/raw
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/K/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }; left() { echo $(( 570 - $(date +%s) + T0 )); }
fin() { cp $D/call1/run.sh $C/commit.txt $O/ 2>/dev/null; gzip -9 $O/raw/*.csv 2>/dev/null; tar czf ${OUT:-/tmp}/u1.tgz -C /tmp u1; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; head -1 $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
TRTFORGE_BS1=default+ao TRTFORGE_CHECKS=ao timeout 100 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_ao.log 2>&1
echo "check ao rc=$?"; grep -E "PASS|FAIL|passed|rror" $O/check_ao.log | cut -c1-180; t
ab() { local m=$1 tag=$2 v=$3 to=$4; TRTFORGE_BS1_AB=$v timeout $to $B bench --model preset:$m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never > $O/ab_$tag.log 2>&1
  echo "ab $tag rc=$?"; grep -E "variant|rror|panick" $O/ab_$tag.log | sed 's/decode //; s/ tok.s (/ /; s/ ms.step; tokens == the first variant.s)/ ms =/' | cut -c1-130; t; }
ab tinyllama-1.1b tl default,default+ao,default+ao=16x1,default+ao=4x8,default+ao=8x2,default+ao=16x2,default+ao=2x16,default,default+ao 170
ab smollm2-135m sm default,default+ao,default+ao=9x1,default+ao=3x1,default,default+ao 60
L=$(left); [ $L -gt 60 ] && { TRTFORGE_BS1=default+ao TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_TILES=1 TRTFORGE_TIMELINE_RAW=$O/raw timeout 60 $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never > $O/tt_ao.log 2>&1
  echo "tt ao rc=$?"; for f in $O/raw/tt_*_bs1.csv; do [ -f "$f" ] && python3 docs/benchmarks/2026-12-02-h200-session24/call1/chain.py "$f" > $O/chain_ao.txt 2>&1; done; cat $O/chain_ao.txt | head -30; t; }
L=$(left); [ $L -gt 50 ] && { TRTFORGE_BS1=default+ao=16x1 TRTFORGE_CHECKS=ao timeout $(( L - 5 )) $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_ao16.log 2>&1
  echo "check ao16 rc=$?"; grep -E "PASS|FAIL|passed|rror" $O/check_ao16.log | cut -c1-180; t; }
true
