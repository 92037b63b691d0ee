#!/usr/bin/env bash
# helper K, session 7, branch attn7, call 1: attn_decode_cx (default at bs64 f16) vs the session-5
# attn_decode_cl (cl4), cx8, cl8 at bs64, cxall at bs8; checks: default (tc) + cl8all (tiny32), then
# cxall with --tinyllama (static + paged). Results: $OUT/k7a.tgz.
set -uo pipefail
C=.carry/K; B=$C/trtforge; O=/tmp/k7a; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 PATH=$PATH:/usr/local/cuda/bin
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kc/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }; el() { echo $(( $(date +%s) - T0 )); }
fin() { cp $C/run1.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/k7a.tgz -C /tmp k7a; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
for f in $C/kc/*.cubin; do cuobjdump -sass -fun attn_decode_cx $f > $O/sass_cx.txt 2>/dev/null && [ -s $O/sass_cx.txt ] && { cuobjdump -sass -fun attn_decode_cl $f > $O/sass_cl.txt 2>&1; echo "sass from $f: cx $(grep -c '/\*[0-9a-f]*\*/' $O/sass_cx.txt) cl $(grep -c '/\*[0-9a-f]*\*/' $O/sass_cl.txt)"; break; }; done
M="--model preset:tinyllama-1.1b"; F="--precisions fp16 --input-lens 512 --output-len 128"
bench() { # name, timeout, env..., -- args
  local n=$1 to=$2; shift 2; local e=(); while [ "$1" != "--" ]; do e+=("$1"); shift; done; shift
  env "${e[@]}" timeout $to $B bench $M "$@" --json $O/$n.json > $O/$n.log 2>&1; echo "$n rc=$?"
  grep -E "eager decode step|decode [0-9]+ tok/s" $O/$n.log | sed -E 's/embed [0-9]+ µs, //; s/, select.*//; s/TTFT.*decode/decode/'
}
bench def 35 X=1 -- $F --batch-sizes 8,64; t
bench cl4 30 TRTFORGE_ATTN=cl4 -- $F --batch-sizes 64; t
bench cx8 30 TRTFORGE_ATTN=cx8 -- $F --batch-sizes 64; t
bench cxall_bs8 30 TRTFORGE_ATTN=cxall -- $F --batch-sizes 8; t
chk() { # name, timeout, env, args
  local n=$1 to=$2 e=$3; shift 3
  env $e TRTFORGE_CHECKS=attn timeout $to $B cuda-check --tiny tests/fixtures/tiny_llama "$@" > $O/check_$n.log 2>&1; echo "check $n rc=$?"
  grep -E "FAIL|passed" $O/check_$n.log | tail -6
}
chk def 20 X=1; t
chk cl8all 20 TRTFORGE_ATTN=cl8all; t
R=$(( 158 - $(el) )); [ $R -gt 20 ] && chk cxall $R TRTFORGE_ATTN=cxall --tinyllama; t
grep -c PASS $O/check_cxall.log 2>/dev/null
[ $(el) -lt 140 ] && bench cl8 20 TRTFORGE_ATTN=cl8 -- $F --batch-sizes 64; t
