#!/usr/bin/env bash
# Session 14 call 6: the L2 prefetch moved out of GemvArgs into a per-module constant table compiled only for small f16
# models (TinyLlama's modules are session 13's cubins byte for byte). SmolLM2 bs1 A/B, TinyLlama int8 / int4 rows (bs 1, 8),
# checks attn + bs1q (the tiny fixtures are small f16: their modules have the prefetch).
set -uo pipefail
C=.carry/s14f; B=$C/trtforge; O=/tmp/s14f; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s14f.tgz -C /tmp s14f; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 70 $B bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "variant|^\| (fp|int)|rror" $O/$n.log | sed -e 's/decode //' | cut -c1-110; t; }
chk() { local n=$1 to=$2 list=$3; shift 3
  env "$@" TRTFORGE_CHECKS=$list timeout $to $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_$n.log 2>&1; echo "check $n rc=$?"
  grep -E "FAIL|passed" $O/check_$n.log | tail -4; grep -c PASS $O/check_$n.log; t; }
E=(TRTFORGE_BS1_AB=default,default+pfg0+pfd0+pfq0,default,default+pfg0+pfd0+pfq0); bn f_smol smollm2-135m --precisions fp16 --batch-sizes 1,8
E=(); bn f_int8 tinyllama-1.1b --precisions int8 --batch-sizes 1,8
E=(); bn f_int4 tinyllama-1.1b --precisions int4 --batch-sizes 1,8
chk attn 130 attn
chk bs1q 190 bs1q
