#!/usr/bin/env bash
# Helper T, session 7 (branch ttft7), call 1: f16 GEMM outputs everywhere + GEMV rounding (c_y16) as
# the candidate default. (1) bench fp16 bs1,64 with the in-process A/B (f16y on/off, cuBLASLt on/off,
# per-shape cuBLASLt tuning lines); (2) bs64 with f16y off (separate engine); (3) ncu per-kernel GPU
# time of one bs1 prefill pass; (4) the checks bs1q, attn, prefill --tinyllama (3 processes in parallel).
# One tar: $OUT/t7.tgz.
set -uo pipefail
C=.carry/T; B=$C/trtforge; O=/tmp/t7; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/run1.sh $C/ncu_sum.py $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/t7.tgz -C /tmp t7; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
echo "== bench (defaults: f16y on) + AB"
TRTFORGE_GEMM_LOG=1 TRTFORGE_PREFILL_AB="def=feyg,noy=feg,lt=feygl,lt_noy=fegl,def2=feyg,noy2=feg" timeout 70 $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 1,64 --input-lens 512 --output-len 128 --runs 9 --json $O/def.json > $O/def.log 2>&1; echo rc=$?
grep -E "AB |^\| fp16|TTFT" $O/def.log | sed -E 's/; kernels:.*//' | cut -c1-230; t; fin
# cuBLASLt for prefill GEMMs (TRTFORGE_PREFILL_LT=1): its checks too, only if the A/B says it is faster
# than the default by >= 0.02 ms against both default runs (def, def2).
ab() { grep -E " AB $1 \(" $O/def.log | sed -E 's/.*TTFT ([0-9.]+) ms.*/\1/' | head -1; }
D1=$(ab def); D2=$(ab def2); L=$(ab lt); echo "def $D1 def2 $D2 lt $L"
LTC=$(python3 -c "import sys; d1,d2,l=[float(x) for x in sys.argv[1:4]]; print(1 if l <= min(d1,d2)-0.02 else 0)" "$D1" "$D2" "$L" 2>/dev/null || echo 0)
echo "== checks (defaults), in parallel; lt checks: $LTC"
L="bs1q attn prefill"; [ "$LTC" = 1 ] && L="$L lt_bs1q lt_attn lt_prefill"
for f in $L; do
  c=${f#lt_}; x=""; [ "$c" = prefill ] && x=--tinyllama
  if [ "$f" = "$c" ]; then e=0; else e=1; fi
  TRTFORGE_PREFILL_LT=$e TRTFORGE_CHECKS=$c timeout 110 $B cuda-check --tiny tests/fixtures/tiny_llama $x > $O/check_$f.log 2>&1 &
done
wait; t
for f in $L; do echo "-- $f"; grep -E "^FAIL|passed|error" $O/check_$f.log | cut -c1-250 | tail -6; done; t
fin
echo "== bs64 f16y off"
TRTFORGE_PREFILL_F16Y=0 timeout 40 $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 64 --input-lens 512 --output-len 128 --json $O/noy64.json > $O/noy64.log 2>&1; echo rc=$?; grep -E "^\| fp16|TTFT" $O/noy64.log | cut -c1-200; t; fin
echo "== ncu one bs1 prefill pass (defaults)"
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1); echo "ncu=$NCU"
TRTFORGE_PROFILE_PREFILL=1 timeout 60 $NCU --profile-from-start off --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv --print-units base --log-file $O/ncu.csv $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 2 --runs 1 > $O/ncu_bench.log 2>&1; echo rc=$?
python3 $C/ncu_sum.py $O/ncu.csv > $O/ncu_sum.txt 2>&1; head -30 $O/ncu_sum.txt; t; fin
