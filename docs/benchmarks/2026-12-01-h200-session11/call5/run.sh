#!/usr/bin/env bash
# Session 11 call 5: cg1_splits (attn_decode_cg at one row with ocomb: 10 splits at 640 positions) — the SmolLM2
# shape at bs 1/8 with the previous count (12) re-timed in the same process, then the check lists on it.
set -uo pipefail
C=.carry/s11e; B=$C/trtforge; O=/tmp/s11e; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s11e.tgz -C /tmp s11e; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 70 $B bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "variant|^\| (fp|int)|rror" $O/$n.log | sed -e 's/decode //' | cut -c1-120; t; }
E=(); bn b_smol smollm2-135m --precisions fp16 --batch-sizes 1,8
E=(TRTFORGE_BS1_AB=default,default+ns12,default,default+ns12); bn b_smol1 smollm2-135m --precisions fp16 --batch-sizes 1
chk() { local n=$1 to=$2 list=$3; shift 3
  env "$@" TRTFORGE_CHECKS=$list timeout $to $B cuda-check --tiny tests/fixtures/tiny_llama ${TL:-} > $O/check_$n.log 2>&1; echo "check $n rc=$?"
  grep -E "FAIL|passed" $O/check_$n.log | tail -4; grep -c PASS $O/check_$n.log; t; }
chk bs1q 160 bs1q
chk attn 120 attn
