#!/usr/bin/env bash
# Session 12 call 6: the new one-row defaults (ocomb + ocl8 for many-head models) against the previous defaults,
# in one process per engine; SmolLM2 with stage_comb's one-block instance split out; the bs1q checks with the
# new defaults (quantized tiny engines take the cluster path).
set -uo pipefail
C=.carry/s12f; B=$C/trtforge; O=/tmp/s12f; mkdir -p $O/raw
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s12f.tgz -C /tmp s12f; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 60 $B bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "variant|^\| (fp|int)|rror" $O/$n.log | sed -e 's/decode //' | cut -c1-120; t; }
E=(TRTFORGE_BS1_AB=default,off+trig+mtrigw+mcg,default,off+trig+mtrigw+mcg); bn b_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,off+trigw+mtrigw+cl+cg+scpre+scpre8+mcg,default,off+trigw+mtrigw+cl+cg+scpre+scpre8+mcg); bn b_int4 tinyllama-1.1b --precisions int4 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,off+trigw+mtrigw+cg+mcg,default,off+trigw+mtrigw+cg+mcg); bn b_int8 tinyllama-1.1b --precisions int8 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,off+trigw+mtrigw+cg+mcg,default,off+trigw+mtrigw+cg+mcg); bn b_fp8 tinyllama-1.1b --precisions fp8 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,off+trigw+cg+mcg,default); bn b_smol smollm2-135m --precisions fp16 --batch-sizes 1
TRTFORGE_CHECKS=bs1q timeout $(( 215 - $(el) )) $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_bs1q.log 2>&1; echo "check bs1q rc=$?"; grep -E "FAIL|passed" $O/check_bs1q.log | tail -4; grep -c PASS $O/check_bs1q.log; t
