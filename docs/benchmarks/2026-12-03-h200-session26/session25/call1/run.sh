#!/usr/bin/env bash
# Session 25 call 1 (carry .carry/t1: the binary with attn_o_f16 — the one-row attention and o projection in one
# launch, bs1 switch `ao`, opt-in — and its NVRTC kernel cache). (1) `TRTFORGE_CHECKS=ao` with the switch on (tiny32
# f16 / int8 / fp8 caches, TinyLlama and SmolLM2 shapes, one sequence: logits + greedy vs the CPU reference);
# (2) one process each, `TRTFORGE_BS1_AB`, default vs default+ao, TinyLlama fp16 and SmolLM2 fp16 at one row;
# (3) the paged checks with it on: tlkv8 (TinyLlama, int8 cache, block tables) and attn (tiny32 / GQA 2, 3, 8).
set -uo pipefail
C=.carry/t1; B=$C/trtforge; O=/tmp/s25a; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/K/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s25a.tgz -C /tmp s25a; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
TRTFORGE_BS1=default+ao TRTFORGE_CHECKS=ao timeout 200 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_ao.log 2>&1
echo "check ao rc=$?"; grep -E "PASS|FAIL|passed" $O/check_ao.log | cut -c1-200; t
ab() { local m=$1 p=$2 tag=$3; TRTFORGE_BS1_AB=default,default+ao,default,default+ao timeout 150 $B bench --model preset:$m --precisions $p --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never --json $O/ab_$tag.json > $O/ab_$tag.log 2>&1
  echo "ab $tag rc=$?"; grep -E "variant|error|panick" $O/ab_$tag.log | cut -c1-160; }
ab tinyllama-1.1b fp16 tl_fp16; t
ab smollm2-135m fp16 sm_fp16; t
TRTFORGE_BS1=default+ao TRTFORGE_CHECKS=tlkv8 timeout 150 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama --paged > $O/check_tlkv8.log 2>&1
echo "check tlkv8 rc=$?"; grep -E "PASS|FAIL|passed" $O/check_tlkv8.log | cut -c1-200; t
TRTFORGE_BS1=default+ao TRTFORGE_CHECKS=attn timeout 150 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama --paged > $O/check_attn.log 2>&1
echo "check attn rc=$?"; grep -E "PASS|FAIL|passed" $O/check_attn.log | cut -c1-200; t
