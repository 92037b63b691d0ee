#!/usr/bin/env bash
# Prepared in session 21 for the next lease (carry .carry/s21n: the binary of the commit in commit.txt and the kernel
# cache of its default modules — TinyLlama fp16 / int4 / int8 / fp8, SmolLM2 fp16 — and of the TL_ON (timeline) builds
# of TinyLlama fp16 / int4 / int8).
# Question: where do the one-row gate/up's ≈ 3.3 µs per extra tile go (session 20 call 4)? Two measurements of more
# bytes in flight a SM (session 19 `tcs`, session 21 three blocks an SM) did not shorten it.
# (1) the per-tile trace (TRTFORGE_TIMELINE_TILES=1: per block of every tc_* launch, the stamps before / after the
#     wait, after the prologue, and per tile after the partials' barrier and after the epilogue's) of one bs1 step,
#     int4 / fp16 / int8, summarized by tt_phases.py; also the bs8 step of int4;
# (2) the default int4 / fp16 rows of this binary (bs 1, 8) as the control.
set -uo pipefail
C=.carry/s22; B=$C/trtforge; D=docs/benchmarks/2026-12-02-h200-session21/next; R=docs/benchmarks/2026-12-02-h200-session22/call1; O=/tmp/s22a; mkdir -p $O/raw
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $R/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s22a.tgz -C /tmp s22a; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
for p in int4 fp16 int8; do
  TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_TILES=1 TRTFORGE_TIMELINE_RAW=$O/raw timeout 90 $B bench --model preset:tinyllama-1.1b --precisions $p --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never > $O/tt_$p.log 2>&1
  echo "tt $p rc=$?"; grep -E "tile trace|rror" $O/tt_$p.log | cut -c1-160
  for f in $O/raw/tt_*$p*_bs1.csv; do [ -f "$f" ] && python3 $D/tt_phases.py "$f" > $O/phases_tt_$p.txt 2>&1; done
  grep -A12 "^gateup" $O/phases_tt_$p.txt | head -30; t
done
TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_TILES=1 TRTFORGE_TIMELINE_RAW=$O/raw timeout 90 $B bench --model preset:tinyllama-1.1b --precisions int4 --batch-sizes 8 --input-lens 512 --output-len 128 --isolate never > $O/tt_int4_bs8.log 2>&1
echo "tt int4 bs8 rc=$?"; for f in $O/raw/tt_*int4*_bs8.csv; do [ -f "$f" ] && python3 $D/tt_phases.py "$f" > $O/phases_tt_int4_bs8.txt 2>&1; done; t
for p in int4 fp16; do timeout 60 $B bench --model preset:tinyllama-1.1b --precisions $p --batch-sizes 1,8 --input-lens 512 --output-len 128 --isolate never --json $O/def_$p.json > $O/def_$p.log 2>&1
  echo "def $p rc=$?"; grep -E "^\| (fp|int)|rror" $O/def_$p.log | cut -c1-120; t; done
