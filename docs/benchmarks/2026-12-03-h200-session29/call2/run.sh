#!/usr/bin/env bash
# Session 29 call 2: tcd_f16_gateup with the down weights in column tiles (each block's down weights one contiguous
# range; call 1 read them as 48-byte pieces of 2,048 rows and lost 26 %). (1) TRTFORGE_CHECKS=gud cuda-check;
# (2) TinyLlama fp16 bs1 GUD 0 / 1 twice; (3) SmolLM2 GUD 0 / 1; (4) what each part of the fused down phase costs
# (TRTFORGE_GUD_MODE=1 / 2 / 4 / 8: without the adds / the down weights' loads / the counter wait / the down phase;
# wrong results, timing only); (5) the in-graph timeline of both (TRTFORGE_TIMELINE=1).
set -uo pipefail
C=.carry/s29b; B=$C/trtforge; O=/tmp/s29b; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/K/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }; left() { echo $(( 570 - $(date +%s) + T0 )); }
fin() { cp $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s29b.tgz -C /tmp s29b; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
R() { local tag=$1 lim=$2; shift 2; timeout $lim "$@" > $O/$tag.log 2>&1; echo "$tag rc=$?"; grep -E "^\| (fp|int)|rror|eager decode step|PASS|FAIL|passed|failed|rep2" $O/$tag.log | cut -c1-300; t; }
TB="$B bench --isolate never --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --model"
TRTFORGE_GUD=1 R tl_on0 60 $TB preset:tinyllama-1.1b --json $O/tl_on0.json
TRTFORGE_GUD=1 TRTFORGE_CHECKS=gud R chk 150 $B cuda-check --tiny tests/fixtures/tiny_llama
for r in 1 2; do
  TRTFORGE_GUD=0 R tl_off$r 60 $TB preset:tinyllama-1.1b --json $O/tl_off$r.json
  TRTFORGE_GUD=1 R tl_on$r 60 $TB preset:tinyllama-1.1b --json $O/tl_on$r.json
done
TRTFORGE_GUD=0 R sm_off 45 $TB preset:smollm2-135m --json $O/sm_off.json
TRTFORGE_GUD=1 R sm_on 45 $TB preset:smollm2-135m --json $O/sm_on.json
for m in 1 2 4 8; do TRTFORGE_GUD=1 TRTFORGE_GUD_MODE=$m R tl_mode$m 45 $TB preset:tinyllama-1.1b; done
mkdir -p $O/raw
TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_RAW=$O/raw TRTFORGE_GUD=0 R tlx_off 60 $TB preset:tinyllama-1.1b
TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_RAW=$O/raw TRTFORGE_GUD=1 R tlx_on 60 $TB preset:tinyllama-1.1b
true
