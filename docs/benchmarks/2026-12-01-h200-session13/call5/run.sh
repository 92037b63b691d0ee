#!/usr/bin/env bash
# Session 13 call 5: `ep` / `mep` (tc_core's qkv / residual epilogues load the RoPE position + table entries and the
# residual pair right after griddepcontrol.wait instead of after the block's reduction): bs1 / bs8 A/B per engine in
# one process; 332fcaf's binary (the call-4 lease) as the default-path control; bs1q with the switches on.
set -uo pipefail
C=.carry/s13e; B=$C/trtforge; O=/tmp/s13e; mkdir -p $O/raw
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* .carry/s13d_ctl/kc/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s13e.tgz -C /tmp s13e; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 90 ${BIN:-$B} bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "variant|^\| (fp|int)|rror" $O/$n.log | sed -e 's/decode //' | cut -c1-120; t; }
chk() { local n=$1 to=$2 list=$3; shift 3
  env "$@" TRTFORGE_CHECKS=$list timeout $to $B cuda-check --tiny tests/fixtures/tiny_llama ${TL:-} > $O/check_$n.log 2>&1; echo "check $n rc=$?"
  grep -E "FAIL|passed" $O/check_$n.log | tail -4; grep -c PASS $O/check_$n.log; t; }
V=default,default+ep+mep,default,default+ep+mep
E=(TRTFORGE_BS1_AB=$V,default+occ1,default+occ1+ep+mep); bn b_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1,8
E=(TRTFORGE_BS1_AB=default); BIN=.carry/s13d_ctl/trtforge bn ctl_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1,8
E=(TRTFORGE_BS1_AB=$V); bn b_int4 tinyllama-1.1b --precisions int4 --batch-sizes 1,8
E=(TRTFORGE_BS1_AB=default); BIN=.carry/s13d_ctl/trtforge bn ctl_int4 tinyllama-1.1b --precisions int4 --batch-sizes 1,8
E=(TRTFORGE_BS1_AB=$V,default+occ1,default+occ1+ep+mep); bn b_int8 tinyllama-1.1b --precisions int8 --batch-sizes 1,8
E=(TRTFORGE_BS1_AB=$V); bn b_fp8 tinyllama-1.1b --precisions fp8 --batch-sizes 1,8
E=(TRTFORGE_BS1_AB=$V); bn b_smol smollm2-135m --precisions fp16 --batch-sizes 1,8
chk bs1q_ep 160 bs1q TRTFORGE_BS1=default+ep+mep
