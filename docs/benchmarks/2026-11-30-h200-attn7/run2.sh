#!/usr/bin/env bash
# helper K, session 7, branch attn7 — NOT RUN (K's device cap was spent by call 1). For the lead:
# the checks that would make attn_decode_cx8 the bs64 default (ACX_WARPS = 8 in cuda/mod.rs), and the
# paged part of the cx checks that call 1 cut, then bs64 default (cx) vs cx8 again. Carry .carry/K
# (binary of attn7 at commit.txt, kernels precompiled in kc/). Fast part ≈ 40 s warm; with EXTRA_TL=1
# the TinyLlama-shape checks with cx8 everywhere (≈ 150–200 s: the CPU reference). Results: $OUT/k7b.tgz.
set -uo pipefail
C=.carry/K; B=$C/trtforge; O=/tmp/k7b; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kc/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/run2.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/k7b.tgz -C /tmp k7b; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
chk() { local n=$1 to=$2 e=$3; shift 3
  env $e TRTFORGE_CHECKS=attn timeout $to $B cuda-check --tiny tests/fixtures/tiny_llama "$@" > $O/check_$n.log 2>&1; echo "check $n rc=$?"
  grep -E "FAIL|passed" $O/check_$n.log | tail -6; }
chk cx8all 30 TRTFORGE_ATTN=cx8all; t
chk cxall 30 TRTFORGE_ATTN=cxall; t
for v in default cx8; do
  TRTFORGE_ATTN=$v timeout 35 $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 64 --input-lens 512 --output-len 128 --json $O/bs64_$v.json > $O/bs64_$v.log 2>&1; echo "$v rc=$?"
  grep -E "^\| fp16" $O/bs64_$v.log; t
done
[ -n "${EXTRA_TL:-}" ] && { chk cx8all_tl 220 TRTFORGE_ATTN=cx8all --tinyllama; t; }
