#!/usr/bin/env bash
# helper K, session 7, branch attn7 — NOT RUN (K's device cap was spent by call 1). For the lead: the
# checks that would make attn_decode_cx / cx8 the bs64 default (ACX_DEFAULT = Some(4) / Some(8) in
# cuda/mod.rs). Call 1's checks ran cx with clusters of 8 on short prompts: one tile per block. Here
# TRTFORGE_ATTN_CS=1 makes one block walk the whole (row, kv head) of the 497- and 200-token prompts
# (tiny32 long, prefill list: 8 tiles per warp with cx, 4 with cx8: the ring wraps, the lazy rescale
# and the warps' merge run), then the attn list (clusters, static + paged) with cx8 and the paged part
# of cx that call 1 cut, then bs64 A/B. Carry .carry/K (binary at commit.txt, kernels in kc/).
# ≈ 60–70 s warm; EXTRA_TL=1 adds the same CS=1 prefill list with --tinyllama for cx8 (SmolLM2 shape
# long prompts, GQA 3, head_dim 64; + the TinyLlama-shape paged checks: ≈ 60–90 s). Results: $OUT/k7b.tgz.
set -uo pipefail
C=.carry/K; B=$C/trtforge; O=/tmp/k7b; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kc/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/run2.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/k7b.tgz -C /tmp k7b; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
chk() { local n=$1 to=$2 list=$3; shift 3
  env "$@" TRTFORGE_CHECKS=$list timeout $to $B cuda-check --tiny tests/fixtures/tiny_llama ${TL:-} > $O/check_$n.log 2>&1; echo "check $n rc=$?"
  grep -E "FAIL|passed" $O/check_$n.log | tail -6; }
chk cxall_cs1_prefill 40 prefill TRTFORGE_ATTN=cxall TRTFORGE_ATTN_CS=1; t
chk cx8all_cs1_prefill 40 prefill TRTFORGE_ATTN=cx8all TRTFORGE_ATTN_CS=1; t
chk cx8all_attn 30 attn TRTFORGE_ATTN=cx8all; t
chk cxall_attn 30 attn TRTFORGE_ATTN=cxall; t
for v in default cx cx8; do
  TRTFORGE_ATTN=$v timeout 35 $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 64 --input-lens 512 --output-len 128 --json $O/bs64_$v.json > $O/bs64_$v.log 2>&1; echo "$v rc=$?"
  grep -E "^\| fp16" $O/bs64_$v.log; t
done
[ -n "${EXTRA_TL:-}" ] && { TL=--tinyllama chk cx8all_cs1_prefill_tl 200 prefill TRTFORGE_ATTN=cx8all TRTFORGE_ATTN_CS=1; t; }
