#!/usr/bin/env bash
# Prepared in session 20 for the next lease (carry .carry/s20n: HEAD's stripped binary + the kernel cache of the default
# modules — TinyLlama fp16 / int4 / int8 / fp8, SmolLM2 fp16 — and of the TRTFORGE_TC_PF2=1 builds, fp16 / int4 / int8 / fp8).
# Session 20 call 5 measured TC_PF2 (gate/up and the head keep the next tile's loads in flight) at int4 bs1 +1.4 %.
# (1) correctness first: TinyLlama fp16 / int8 / int4 / fp8 logits vs the CPU reference with TC_PF2 (`udown` set,
#     1 and 3 sequences; ≈ 300 s on the H200, most of it the CPU reference; `udown4` checks int4 alone, 2 of the 8);
# (2) A/B in alternating processes: default / PF2 / default / PF2, int4 / int8 / fp8, bs 1 and 8.
# If (1) passes and (2) wins, make TC_PF2 the default for those formats (kernels.cu PF2) and rerun the checks.
set -uo pipefail
C=.carry/s20n; B=$C/trtforge; O=/tmp/s21a; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s21a.tgz -C /tmp s21a; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
TRTFORGE_TC_PF2=1 TRTFORGE_CHECKS=udown timeout 400 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_pf2.log 2>&1
echo "check rc=$?"; grep -E "PASS|FAIL|passed" $O/check_pf2.log | cut -c1-160; t
nb() { local n=$1; shift; env "${E[@]}" timeout 60 $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --isolate never --json $O/$n.json "$@" > $O/$n.log 2>&1
  echo "$n rc=$?"; grep -E "^\| (fp|int)|rror" $O/$n.log | cut -c1-120; t; }
for f in int4 int8 fp8; do
  for r in a b; do
    E=(X=1); nb ${f}_def_$r --precisions $f --batch-sizes 1,8
    E=(TRTFORGE_TC_PF2=1); nb ${f}_pf2_$r --precisions $f --batch-sizes 1,8
  done
done
