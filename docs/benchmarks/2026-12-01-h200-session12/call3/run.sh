#!/usr/bin/env bash
# Session 12 call 3: (1) 8-bit KV caches at bs64 through attn_decode_cl8 (new default): multi-tile check, the 4k
# fp8-KV row against fp16 KV (separate processes) and the old kernel (TRTFORGE_ATTN=tc1), 512-context bs64 rows;
# (2) the fold records in N copies (repN) so that fewer o blocks read each L2 line.
set -uo pipefail
C=.carry/s12c; B=$C/trtforge; O=/tmp/s12c; mkdir -p $O/raw
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s12c.tgz -C /tmp s12c; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 80 $B bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "variant|^\| (fp|int)|rror" $O/$n.log | sed -e 's/decode //' | cut -c1-120; t; }
chk() { local n=$1 to=$2 list=$3; shift 3
  env "$@" TRTFORGE_CHECKS=$list timeout $to $B cuda-check --tiny tests/fixtures/tiny_llama ${TL:-} > $O/check_$n.log 2>&1; echo "check $n rc=$?"
  grep -E "FAIL|passed" $O/check_$n.log | tail -4; grep -c PASS $O/check_$n.log; t; }
chk prefill_cl8 90 prefill TRTFORGE_ATTN=cl8all TRTFORGE_ATTN_CS=1
E=(TRTFORGE_BS1_AB=default,default+ocomb,default+ocomb+rep2,default+ocomb+rep4,default+ocomb+rep8,default+cg+ocomb+rep8,default); bn b_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,default+rep2,default+rep4,default+rep8,default); bn b_smol smollm2-135m --precisions fp16 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,default+ocomb+rep4,default+ocomb+rep8,default); bn b_int4 tinyllama-1.1b --precisions int4 --batch-sizes 1
k4() { local n=$1 kv=$2; shift 2
  env "$@" timeout 100 $B bench --model preset:tinyllama-1.1b --precisions fp16 --kv-cache $kv --max-model-len 4096 --batch-sizes 64 --input-lens 4032 --output-len 64 --runs 1 --json $O/$n.json > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "^\| fp|rror" $O/$n.log; t; }
k4 kv4k_f16 fp16
k4 kv4k_f8 fp8
k4 kv4k_f8_tc1 fp8 TRTFORGE_ATTN=tc1
for a in new tc1; do
  env $( [ $a = tc1 ] && echo TRTFORGE_ATTN=tc1 ) timeout 80 $B bench --model preset:tinyllama-1.1b --precisions fp16 --kv-cache fp8 --batch-sizes 64 --input-lens 512 --output-len 128 --json $O/kv512_$a.json > $O/kv512_$a.log 2>&1; echo "kv512 $a rc=$?"; grep -E "^\| fp|rror" $O/kv512_$a.log; t
done
chk attn_rep4 110 attn TRTFORGE_BS1=default+rep4
