#!/usr/bin/env bash
# Session 22, prepared for the next lease (carry .carry/s23 from prep.sh). Question: does the int4 group scale after the
# mma (TRTFORGE_I4_POST=1, kernels.cu I4_POST: 4 FFMA a k-step instead of 32 HMUL2 a lane; the default's SASS is
# unchanged) shorten the one-row int4 GEMVs further, and does it hold the checks?
# (1) TRTFORGE_I4_POST=1 TRTFORGE_CHECKS=i4g128: TinyLlama int4 g128 logits (1 and 3 sequences; the default gives
#     6.82e-4 / 7.90e-4) and the SmolLM2 shape's (576 inputs stored as 640: a partial last group) logits and greedy;
#     then the same set on the default build, for the errors beside it;
# (2) default / I4_POST / default / I4_POST in separate processes, int4 bs 1 and 8 (one pair before the checks, one
#     after, so that a short lease still has one).
# If (1) passes and (2) wins, the remaining exact-equality question is the GEMM path's f16 copy (prefill, > 8 rows):
# run TRTFORGE_CHECKS=bs1q and prefill with it before making it the default.
# Session 22 call 4 ran this script (d1e1c53) with 245 s: pair a (default 1,841 / 10,760, I4_POST 1,923 / 10,954) and
# i4g128 5 / 5 with I4_POST (then the paged list ran after it; e05a4ff stops the set there). Left: pair b, the
# default's i4g128, bs1q / prefill with I4_POST.
set -uo pipefail
C=.carry/s23; B=$C/trtforge; R=docs/benchmarks/2026-12-02-h200-session22/next; O=/tmp/s23a; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $R/next_call.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s23a.tgz -C /tmp s23a; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
ck() { local n=$1 lim=$2; shift 2; env "$@" timeout $lim $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_$n.log 2>&1
  echo "check $n rc=$?"; grep -E "PASS|FAIL|passed" $O/check_$n.log | cut -c1-160; t; }
nb() { local n=$1; shift; env "${E[@]}" timeout 60 $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --isolate never --json $O/$n.json "$@" > $O/$n.log 2>&1
  echo "$n rc=$?"; grep -E "^\| (fp|int)|rror" $O/$n.log | cut -c1-120; t; }
E=(X=1); nb int4_def_a --precisions int4 --batch-sizes 1,8
E=(TRTFORGE_I4_POST=1); nb int4_post_a --precisions int4 --batch-sizes 1,8
ck i4g128_post 200 TRTFORGE_CHECKS=i4g128 TRTFORGE_I4_POST=1
E=(X=1); nb int4_def_b --precisions int4 --batch-sizes 1,8
E=(TRTFORGE_I4_POST=1); nb int4_post_b --precisions int4 --batch-sizes 1,8
ck i4g128_def 200 TRTFORGE_CHECKS=i4g128
