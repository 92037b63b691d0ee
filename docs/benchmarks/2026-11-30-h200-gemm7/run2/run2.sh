#!/usr/bin/env bash
# Helper W (session 7, branch gemm7), call 2: tcg4 v2 (conflict-free x staging, deeper ring, cluster-fit
# shapes): tiny tcg4 checks, bench fp16 bs16/64 off vs tcg4 (+ ring depth variants), int8/fp8 bs16/64
# off vs tcg4, TinyLlama check, ncu of the bs64 tcg4 launches. One tar: $OUT/w2.tgz.
set -uo pipefail
C=.carry/W; B=$C/trtforge; O=/tmp/w2; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/run*.sh $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/w2.tgz -C /tmp w2; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
run() { # name env... (bench args in BA)
  local n=$1; shift
  env "$@" timeout ${BT:-60} $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --runs 2 --json $O/bench_$n.json $BA > $O/bench_$n.log 2>&1; echo "bench $n rc=$?"
  grep -E "eager decode|tcg4 .*picked" $O/bench_$n.log | cut -c1-400; grep -E "^\| (fp16|int8|fp8)" $O/bench_$n.log; t
}
BA="--precisions fp16 --batch-sizes 16,64"
run f16_off TRTFORGE_TCG=0
run f16_tcg4 TRTFORGE_TCG=4 TRTFORGE_TCG4_LOG=1
BA="--precisions fp16 --batch-sizes 64"
run f16_tcg4_cpa TRTFORGE_TCG=4 TRTFORGE_TCG4_DESC=2
echo "== ncu"
TRTFORGE_TCG=4 timeout ${NCU_T:-30} ncu --clock-control none --kernel-name regex:"tcg4_(qkv|o|gateup|down)_64" --launch-skip 88 --launch-count 4 --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section SchedulerStats $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 64 --input-lens 512 --output-len 4 --runs 1 --warmup 0 > $O/ncu.log 2>&1; echo rc=$?
grep -E "tcg4_|Duration|DRAM Throughput|SM Active Cycles|Elapsed Cycles|Achieved Occupancy|Waves Per|Warp Cycles Per Issued|Max Active Clusters" $O/ncu.log | head -44; t
BA="--precisions int8,fp8 --batch-sizes 16,64"
[ -z "${NO_Q:-}" ] && { run q_off TRTFORGE_TCG=0; run q_tcg4 TRTFORGE_TCG=4; }
echo "== TinyLlama check"
TRTFORGE_TCG=4 TRTFORGE_CHECKS=tcg4 timeout ${CHK_T:-75} $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/chk_tl.log 2>&1; echo rc=$?; grep -E "FAIL|passed|rror|tinyllama-1.1b" $O/chk_tl.log | cut -c1-220 | tail -6; t
echo "== cpa check"
TRTFORGE_TCG=4 TRTFORGE_TCG4_DESC=2 TRTFORGE_CHECKS=tcg4 timeout 30 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/chk_tiny_cpa.log 2>&1; echo "chk tiny cpa rc=$?"; grep -E "passed" $O/chk_tiny_cpa.log; grep -E "tiny_llama [0-9]+ seqs" $O/chk_tiny_cpa.log | cut -c1-140; t
if [ -n "${EXTRA:-}" ]; then echo "== extra"; eval "$EXTRA"; t; fi
