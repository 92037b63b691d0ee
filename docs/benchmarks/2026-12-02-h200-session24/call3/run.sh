#!/usr/bin/env bash
# Session 24 call 3 (carry .carry/s30: the binary with TC_PTOUCH on by default — the folded o GEMV (PRO_COMB) tests
# GemvArgs::nsplit and the cluster size before griddepcontrol.wait, so that their constant-bank lines are fetched while
# the block waits instead of after it (call 1: wait -> the splits' weights 1.8-2.1 µs; SASS: LDC c[0x0][0x288] and
# c[0x0][0x188] were the first instructions after ACQBULK)). (1) alternating processes, TRTFORGE_TC_PTOUCH=0 = the code
# before: int4 three pairs, fp16 two pairs, bs 1 and 8; (2) `TRTFORGE_CHECKS=i4g128` (TinyLlama int4 g128 logits and
# greedy vs the CPU reference, through the one-row o fold) on the new build.
set -uo pipefail
C=.carry/s30; B=$C/trtforge; D=docs/benchmarks/2026-12-02-h200-session24/call3; O=/tmp/s30a; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $D/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s30a.tgz -C /tmp s30a; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
run() { local p=$1 tag=$2; shift 2; env "$@" timeout 60 $B bench --model preset:tinyllama-1.1b --precisions $p --batch-sizes 1,8 --input-lens 512 --output-len 128 --isolate never --json $O/${p}_$tag.json > $O/${p}_$tag.log 2>&1
  echo "$p $tag rc=$? $(grep -E '^\| (fp|int)' $O/${p}_$tag.log | awk -F'|' '{printf "bs%s %s  ", $3, $6}')"; }
run int4 new_a; run int4 old_a TRTFORGE_TC_PTOUCH=0; run int4 new_b; run int4 old_b TRTFORGE_TC_PTOUCH=0; run int4 new_c; run int4 old_c TRTFORGE_TC_PTOUCH=0; t
run fp16 new_a; run fp16 old_a TRTFORGE_TC_PTOUCH=0; run fp16 new_b; run fp16 old_b TRTFORGE_TC_PTOUCH=0; t
TRTFORGE_CHECKS=i4g128 timeout 150 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_i4g128.log 2>&1
echo "check i4g128 rc=$?"; grep -E "PASS|FAIL|passed" $O/check_i4g128.log | cut -c1-170; t
