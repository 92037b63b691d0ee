#!/usr/bin/env bash
# Session 23, prepared for the next lease (carry .carry/s27 from prep.sh). Question: with the int4 group scale after the
# mma and the x loads without their predicate (session 23), where does a one-row tile's time go now — is it still the
# instructions a block issues per tile (session 22's trace: int4 gate/up tiles ≈ 1.3 µs each, two blocks of an SM at
# two speeds), and how much of the per-tile time is now the epilogue / barriers rather than the tile body?
# (1) the per-tile trace (TRTFORGE_TIMELINE_TILES=1) of one bs1 step, int4 / fp16 / int8, summarized by session 21's
#     tt_phases.py; (2) the default rows of this binary (bs 1, 8) as the control; (0) before them, the paged checks.
set -uo pipefail
C=.carry/s27; B=$C/trtforge; D=docs/benchmarks/2026-12-02-h200-session21/next; O=/tmp/s27a; mkdir -p $O/raw
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp docs/benchmarks/2026-12-02-h200-session23/next/next_call.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s27a.tgz -C /tmp s27a; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
# (0) first: the paged-KV checks (the engine `serve --backend cuda` runs; paged vs static vs CPU, preset:tiny int4 g32,
#     tiny32, the TinyLlama shape) — session 23 ran the static checks with its two new defaults but not these.
timeout 300 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama --paged > $O/check_paged.log 2>&1
echo "check paged rc=$?"; grep -E "FAIL|passed" $O/check_paged.log | cut -c1-170; t
for p in int4 fp16 int8; do
  TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_TILES=1 TRTFORGE_TIMELINE_RAW=$O/raw timeout 90 $B bench --model preset:tinyllama-1.1b --precisions $p --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never > $O/tt_$p.log 2>&1
  echo "tt $p rc=$?"; grep -E "tile trace|rror" $O/tt_$p.log | cut -c1-160
  for f in $O/raw/tt_*$p*_bs1.csv; do [ -f "$f" ] && python3 $D/tt_phases.py "$f" > $O/phases_tt_$p.txt 2>&1; done
  grep -A12 "^gateup" $O/phases_tt_$p.txt | head -30; t
done
for p in int4 fp16 int8; do timeout 60 $B bench --model preset:tinyllama-1.1b --precisions $p --batch-sizes 1,8 --input-lens 512 --output-len 128 --isolate never --json $O/def_$p.json > $O/def_$p.log 2>&1
  echo "def $p rc=$?"; grep -E "^\| (fp|int)|rror" $O/def_$p.log | cut -c1-120; t; done
