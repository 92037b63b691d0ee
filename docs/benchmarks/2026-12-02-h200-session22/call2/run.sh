#!/usr/bin/env bash
# Session 22 call 2 (carry .carry/s22b: the binary with two kernels.cu changes — `i4_word_pairs`, the int4 pairs by a
# fused and-or and one fma for the odd nibbles, 13 instructions a word instead of 19, same pairs bit for bit; and
# RS_LATE, the int8 / fp8 row scales of the next tile taken into `rs` a tile later, same values — and the kernel cache
# of TinyLlama fp16 / int4 (and TRTFORGE_I4_LOP3=0) / int8 / fp8, TL_ON int4 / int8, SmolLM2 fp16).
# Questions from call 1's tile trace: (a) are the one-row int4 GEMV tiles bound by their instructions (then fewer
# dequant instructions shorten them)? (b) int8 / fp8 run without `scpre` at one row (session 7: it lost), so every
# gate/up tile's epilogue loads its row scales from DRAM (int8 tile-0 epilogue 2.1 µs vs int4 0.5): with RS_LATE,
# does `scpre` (+ `scpre8` at 2-8 rows) now win?
set -uo pipefail
C=.carry/s22b; B=$C/trtforge; R=docs/benchmarks/2026-12-02-h200-session22/call2; O=/tmp/s22b; mkdir -p $O/raw
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $R/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s22b.tgz -C /tmp s22b; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
ck() { local n=$1 lim=$2; shift 2; env "$@" timeout $lim $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_$n.log 2>&1
  echo "check $n rc=$?"; grep -E "PASS|FAIL|passed" $O/check_$n.log | cut -c1-160; t; }
ck udown4 150 TRTFORGE_CHECKS=udown4
nb() { local n=$1; shift; env "${E[@]}" timeout 70 $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --isolate never --json $O/$n.json "$@" > $O/$n.log 2>&1
  echo "$n rc=$?"; grep -E "^\| (fp|int)|rror|variant" $O/$n.log | cut -c1-120; t; }
for r in a b; do
  E=(X=1); nb int4_new_$r --precisions int4 --batch-sizes 1,8
  E=(TRTFORGE_I4_LOP3=0); nb int4_old_$r --precisions int4 --batch-sizes 1,8
done
V=default,default+scpre+scpre8,default,default+scpre+scpre8
for p in int8 fp8; do E=(TRTFORGE_BS1_AB=$V); nb ${p}_scpre --precisions $p --batch-sizes 1,8; done
for p in int4 int8; do
  E=(TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_TILES=1 TRTFORGE_TIMELINE_RAW=$O/raw/$p); mkdir -p $O/raw/$p
  [ $p = int8 ] && E+=(TRTFORGE_BS1=default+scpre+scpre8)
  nb tt_$p --precisions $p --batch-sizes 1
  for f in $O/raw/$p/tt_*_bs1.csv; do [ -f "$f" ] && python3 docs/benchmarks/2026-12-02-h200-session21/next/tt_phases.py "$f" > $O/phases_tt_$p.txt 2>&1; done
  grep -A12 "^gateup  blocks of 3" $O/phases_tt_$p.txt | head -13; grep "per launch" $O/phases_tt_$p.txt
done
ck udown8_scpre 110 TRTFORGE_CHECKS=udown8 TRTFORGE_BS1=default+scpre+scpre8
ck udownf8_scpre 110 TRTFORGE_CHECKS=udownf8 TRTFORGE_BS1=default+scpre+scpre8
