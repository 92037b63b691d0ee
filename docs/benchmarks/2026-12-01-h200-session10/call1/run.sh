#!/usr/bin/env bash
# Session 10 call 1: small-batch decode attention variants by env (no code change), bs1/bs8, separate
# processes; in-graph timeline at bs1 (default vs the one-block-per-kv-head cl8); checks of that variant.
set -uo pipefail
C=.carry/s10a; B=$C/trtforge; O=/tmp/s10a; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s10a.tgz -C /tmp s10a; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 45 $B bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "^\| (fp|int)" $O/$n.log | cut -d'|' -f2-7; }
A1=(TRTFORGE_ATTN=cl8 TRTFORGE_ATTN_CS=1 TRTFORGE_ATTN_STAGES=5)
A2=(TRTFORGE_ATTN=cl8 TRTFORGE_ATTN_CS=1 TRTFORGE_ATTN_STAGES=6)
A3=(TRTFORGE_ATTN=cl TRTFORGE_ATTN_CS=1 TRTFORGE_ATTN_STAGES=8)
A4=(TRTFORGE_ATTN=cx8all)
A5=(TRTFORGE_ATTN=cx8all TRTFORGE_ATTN_CS=1)
A6=(TRTFORGE_ATTN=cl8 TRTFORGE_ATTN_CS=2 TRTFORGE_ATTN_STAGES=3)
E=(X=1); bn d_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1,8
E=("${A1[@]}"); bn a1_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1,8
E=("${A2[@]}"); bn a2_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1,8
E=("${A3[@]}"); bn a3_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1,8
E=("${A4[@]}"); bn a4_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1,8
E=("${A5[@]}"); bn a5_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1,8
E=("${A6[@]}"); bn a6_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1,8
E=(X=1); bn d2_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1,8; t
for p in int4 int8; do
  E=(X=1); bn d_$p tinyllama-1.1b --precisions $p --batch-sizes 1,8
  E=("${A1[@]}"); bn a1_$p tinyllama-1.1b --precisions $p --batch-sizes 1,8
  E=("${A3[@]}"); bn a3_$p tinyllama-1.1b --precisions $p --batch-sizes 1,8
done; t
E=(X=1); bn d_smol smollm2-135m --precisions fp16 --batch-sizes 1,8
E=("${A1[@]}"); bn a1_smol smollm2-135m --precisions fp16 --batch-sizes 1,8
E=("${A3[@]}"); bn a3_smol smollm2-135m --precisions fp16 --batch-sizes 1,8; t
E=(TRTFORGE_TIMELINE=1); bn tl_d_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1
E=(TRTFORGE_TIMELINE=1 "${A1[@]}"); bn tl_a1_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1; t
chk() { local n=$1 to=$2 list=$3; shift 3
  env "$@" TRTFORGE_CHECKS=$list timeout $to $B cuda-check --tiny tests/fixtures/tiny_llama ${TL:-} > $O/check_$n.log 2>&1; echo "check $n rc=$?"
  grep -E "FAIL|passed" $O/check_$n.log | tail -4; t; }
chk attn_a1 45 attn TRTFORGE_ATTN=cl8all TRTFORGE_ATTN_CS=1 TRTFORGE_ATTN_STAGES=5
chk prefill_a1 60 prefill TRTFORGE_ATTN=cl8all TRTFORGE_ATTN_CS=1 TRTFORGE_ATTN_STAGES=5
