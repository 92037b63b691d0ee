#!/usr/bin/env bash
# Session 14 call 2: checks on the new code (GemvArgs grew the L2 prefetch ranges; small f16 models prefetch by
# default): bs1q, attn; SmolLM2 bs1 A/B of the prefetch subsets; TinyLlama fp16 bs1 A/B of the attention + o
# arrangements without the fold (cl + plain o, cg with its last-block combine + plain o).
set -uo pipefail
C=.carry/s14b; B=$C/trtforge; O=/tmp/s14b; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s14b.tgz -C /tmp s14b; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 100 ${BIN:-$B} bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "variant|^\| (fp|int)|rror" $O/$n.log | sed -e 's/decode //' | cut -c1-120; t; }
chk() { local n=$1 to=$2 list=$3; shift 3
  env "$@" TRTFORGE_CHECKS=$list timeout $to $B cuda-check --tiny tests/fixtures/tiny_llama ${TL:-} > $O/check_$n.log 2>&1; echo "check $n rc=$?"
  grep -E "FAIL|passed" $O/check_$n.log | tail -4; grep -c PASS $O/check_$n.log; t; }
E=(TRTFORGE_BS1_AB=default,default+pfg0+pfd0+pfq0,default+pfg0,default+pfd0,default+pfq0,default,default+pfg0+pfd0+pfq0); bn b_smol smollm2-135m --precisions fp16 --batch-sizes 1
NF=off+trig+mtrigw+mcg+r2+mr2+sp+msp
E=(TRTFORGE_BS1_AB=default,$NF+cl,$NF+cg,default,$NF+cl); bn b_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1
chk attn 70 attn
chk bs1q 200 bs1q
