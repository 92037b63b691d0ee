#!/usr/bin/env bash
# Session 29 call 1: the one-row gate/up + down launch (tcd_f16_gateup, TRTFORGE_GUD=1).
# (1) TRTFORGE_CHECKS=gud cuda-check with TRTFORGE_GUD=1 (fixture / TinyLlama / SmolLM2 shapes, f16, one sequence, vs
# the CPU; the on-GPU greedy loop); (2) fp16 bs1 512 + 128, TinyLlama shape, GUD 0 / 1 alternating processes, twice;
# (3) SmolLM2 shape GUD 0 / 1.
set -uo pipefail
C=.carry/s29a; B=$C/trtforge; O=/tmp/s29a; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/K/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }; left() { echo $(( 570 - $(date +%s) + T0 )); }
fin() { cp $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s29a.tgz -C /tmp s29a; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
R() { local tag=$1 lim=$2; shift 2; timeout $lim "$@" > $O/$tag.log 2>&1; echo "$tag rc=$?"; grep -E "^\| (fp|int)|rror|eager decode step|PASS|FAIL|passed|failed" $O/$tag.log | cut -c1-300; t; }
TRTFORGE_GUD=1 TRTFORGE_CHECKS=gud R chk 150 $B cuda-check --tiny tests/fixtures/tiny_llama
TB="$B bench --isolate never --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --model"
for r in 1 2; do
  TRTFORGE_GUD=0 R tl_off$r 60 $TB preset:tinyllama-1.1b --json $O/tl_off$r.json
  TRTFORGE_GUD=1 R tl_on$r 60 $TB preset:tinyllama-1.1b --json $O/tl_on$r.json
done
TRTFORGE_GUD=0 R sm_off 45 $TB preset:smollm2-135m --json $O/sm_off.json
TRTFORGE_GUD=1 R sm_on 45 $TB preset:smollm2-135m --json $O/sm_on.json
[ $(left) -gt 60 ] && TRTFORGE_GUD=1 TRTFORGE_GUD_GRID=235 R tl_on_g235 50 $TB preset:tinyllama-1.1b --json $O/tl_on_g235.json
true
