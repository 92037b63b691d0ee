#!/usr/bin/env bash
# helper K, session 5, branch attn5 (issue #11): attn_decode_cl (default on sm_90) vs attn_decode_tc
# (TRTFORGE_ATTN=tc1) in one call: checks first, then the A/B benches. Results: $OUT/k5.tgz.
set -uo pipefail
C=.carry/K; B=$C/trtforge; O=/tmp/k5; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kc1/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/*.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/k5.tgz -C /tmp k5; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
M="--model preset:tinyllama-1.1b"
bench() { # name, timeout, env..., -- args
  local n=$1 to=$2; shift 2; local e=(); while [ "$1" != "--" ]; do e+=("$1"); shift; done; shift
  env "${e[@]}" timeout $to $B bench $M "$@" --json $O/$n.json > $O/$n.log 2>&1; echo "$n rc=$?"
  grep -E "eager decode step|decode [0-9]+ tok/s" $O/$n.log | sed -E 's/embed [0-9]+ µs, //; s/, select.*//'
}
echo "== check (TRTFORGE_CHECKS=attn: tiny32 f16/int8/fp8 KV, TinyLlama, SmolLM2 shapes; static + paged)"
TRTFORGE_CHECKS=attn timeout ${CHK_TO:-130} $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_attn.log 2>&1; echo rc=$?
grep -E "FAIL|passed" $O/check_attn.log | tail -12; t
F="--precisions fp16 --batch-sizes 1,8,64 --input-lens 512 --output-len 128"
bench fp16_new 70 X=1 -- $F; t
bench fp16_old 70 TRTFORGE_ATTN=tc1 -- $F; t
L="--precisions fp16 --kv-cache fp16,fp8 --input-lens 1984 --output-len 48 --batch-sizes 64 --runs 1"
bench long_new 70 X=1 -- $L; t
bench long_old 70 TRTFORGE_ATTN=tc1 -- $L; t
if [ $(( $(date +%s) - T0 )) -lt ${VAR_UNTIL:-260} ]; then
  bench bs1_cs16 40 TRTFORGE_ATTN_CS=16 -- --precisions fp16 --batch-sizes 1,8 --input-lens 512 --output-len 128; t
  bench bs64_st2 40 TRTFORGE_ATTN_STAGES=2 -- --precisions fp16 --batch-sizes 64 --input-lens 512 --output-len 128; t
  bench bs64_st6 40 TRTFORGE_ATTN_STAGES=6 -- --precisions fp16 --batch-sizes 64 --input-lens 512 --output-len 128; t
fi
if [ -n "${EXTRA:-}" ]; then echo "== extra"; eval "$EXTRA"; t; fi
echo "== summary"; for f in $O/*.log; do grep -H -E "^\| fp16" $f; done | sed "s#$O/##"
