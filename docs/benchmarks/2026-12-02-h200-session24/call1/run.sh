#!/usr/bin/env bash
# Session 24 call 1 (carry .carry/s28 from call1/prep.sh; binary = this commit + the TL_ON-only sub-stamps).
# (0) the paged-KV checks (serve's engine) on session 23's defaults (I4_POST, TC_XCLAMP) — never run on a GPU yet;
# (1) the per-tile trace of one bs1 step, fp16 / int4 / int8, with session 24's sub-stamps of the o GEMV's combine
#     prologue and of the decode attention (chain.py: the attention -> o chain per layer; tt_phases.py: per tile);
# (2) in one process each (TRTFORGE_BS1_AB, same tokens): the default (attention splits' records combined in the o
#     GEMV's prologue, `ocomb` + `ocl8`) against the cluster attention that merges its splits itself (`cl`, o plain)
#     and against `cg`'s last-block combine, fp16 and int4;
# (3) the default rows bs 1, 8 (control for cd34b4e, whose tc_core SASS differs for int4 o / qkv).
set -uo pipefail
C=.carry/s28; B=$C/trtforge; D21=docs/benchmarks/2026-12-02-h200-session21/next; D=docs/benchmarks/2026-12-02-h200-session24/call1
O=/tmp/s28a; mkdir -p $O/raw
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $D/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s28a.tgz -C /tmp s28a; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
timeout 200 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama --paged > $O/check_paged.log 2>&1
echo "check paged rc=$?"; grep -E "FAIL|passed" $O/check_paged.log | cut -c1-170; t
for p in fp16 int4 int8; do
  TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_TILES=1 TRTFORGE_TIMELINE_RAW=$O/raw timeout 90 $B bench --model preset:tinyllama-1.1b --precisions $p --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never > $O/tt_$p.log 2>&1
  echo "tt $p rc=$?"; grep -E "tile trace|rror" $O/tt_$p.log | cut -c1-160
  for f in $O/raw/tt_*${p}*_bs1.csv; do [ -f "$f" ] && { python3 $D21/tt_phases.py "$f" > $O/phases_tt_$p.txt 2>&1; python3 $D/chain.py "$f" > $O/chain_$p.txt 2>&1; }; done
  cat $O/chain_$p.txt; t
done
F16="off+trig+mtrigw+r2+mr2+mcg+sp+msp"; Q4="off+trigw+mtrigw+scpre+scpre8+mcg+sp+msp"
TRTFORGE_BS1_AB="default,$F16+cl,default,$F16+cl,$F16+cg,$F16+cg+ocomb+ocl8,default+ns5,default+ns7,default+ns14" timeout 120 $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never > $O/ab_fp16.log 2>&1
echo "ab fp16 rc=$?"; grep -E "variant|rror" $O/ab_fp16.log | cut -c1-200; t
TRTFORGE_BS1_AB="default,$Q4+cl,default,$Q4+cl,$Q4+cg,$Q4+cl+cg+ocomb+ocl8,default+ns5,default+ns7,default+ns14" timeout 120 $B bench --model preset:tinyllama-1.1b --precisions int4 --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never > $O/ab_int4.log 2>&1
echo "ab int4 rc=$?"; grep -E "variant|rror" $O/ab_int4.log | cut -c1-200; t
for p in int4 fp16 int8; do timeout 60 $B bench --model preset:tinyllama-1.1b --precisions $p --batch-sizes 1,8 --input-lens 512 --output-len 128 --isolate never --json $O/def_$p.json > $O/def_$p.log 2>&1
  echo "def $p rc=$?"; grep -E "^\| (fp|int)|rror" $O/def_$p.log | cut -c1-120; t; done
