#!/usr/bin/env bash
# Session 11 call 3: the new bs1 defaults (f89406c: cg at one row for int8 / fp8 with trigw, int4; cg + ocomb
# for small f16 steps) checked, then A/B against the previous defaults in one process per engine (bs 1 and 8).
set -uo pipefail
C=.carry/s11c; B=$C/trtforge; O=/tmp/s11c; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s11c.tgz -C /tmp s11c; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 80 $B bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "variant|^\| (fp|int)|rror" $O/$n.log | sed -e 's/decode //' | cut -c1-120; t; }
E=(TRTFORGE_BS1_AB=default,mtrigw+mcg,default,mtrigw+mcg,default+ns8,default+scpre); bn b_int8 tinyllama-1.1b --precisions int8 --batch-sizes 1,8
E=(TRTFORGE_BS1_AB=default,mtrigw+mcg,default,mtrigw+mcg,default+ns8); bn b_fp8 tinyllama-1.1b --precisions fp8 --batch-sizes 1,8
E=(TRTFORGE_BS1_AB=default,trigw+mtrigw+cl+scpre+scpre8+mcg,default,trigw+mtrigw+cl+scpre+scpre8+mcg,default+trig=211111); bn b_int4 tinyllama-1.1b --precisions int4 --batch-sizes 1,8
E=(TRTFORGE_BS1_AB=default,trigw+cl+mcg,default,trigw+cl+mcg,default+trig=211111); bn b_smol smollm2-135m --precisions fp16 --batch-sizes 1,8
chk() { local n=$1 to=$2 list=$3; shift 3
  env "$@" TRTFORGE_CHECKS=$list timeout $to $B cuda-check --tiny tests/fixtures/tiny_llama ${TL:-} > $O/check_$n.log 2>&1; echo "check $n rc=$?"
  grep -E "FAIL|passed" $O/check_$n.log | tail -4; grep -c PASS $O/check_$n.log; t; }
chk bs1q 150 bs1q
chk attn 120 attn
