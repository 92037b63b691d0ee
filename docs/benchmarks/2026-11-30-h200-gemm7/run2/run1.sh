#!/usr/bin/env bash
# Helper W (session 7, branch gemm7), call 1: tcg4 (TRTFORGE_TCG=4, wgmma) correctness with both
# descriptor encodings (TRTFORGE_TCG4_DESC=0/1) on the tiny fixture, then bench fp16 bs16/64 A/B
# (TCG off vs 4), the TinyLlama-shape check, int8 bs64 A/B, ncu of the tcg4 launches. One tar: $OUT/w1.tgz.
set -uo pipefail
C=.carry/W; B=$C/trtforge; O=/tmp/w1; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/run*.sh $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/w1.tgz -C /tmp w1; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
DM=none
for dm in 0 1; do
  TRTFORGE_TCG=4 TRTFORGE_TCG4_DESC=$dm TRTFORGE_TCG4_LOG=1 TRTFORGE_CHECKS=tcg4 timeout 45 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/chk_tiny_dm$dm.log 2>&1; echo "chk dm=$dm rc=$?"
  grep -E "PASS|FAIL|passed|rror" $O/chk_tiny_dm$dm.log | cut -c1-220 | tail -8; t
  if grep -qE " 0 failed" $O/chk_tiny_dm$dm.log; then DM=$dm; break; fi
done
echo "DM=$DM"; [ $DM = none ] && DM=0
run() { # name env... (bench args in BA)
  local n=$1; shift
  env "$@" timeout ${BT:-60} $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --runs 2 --json $O/bench_$n.json $BA > $O/bench_$n.log 2>&1; echo "bench $n rc=$?"
  grep -E "eager decode|tcg4 " $O/bench_$n.log | cut -c1-400; grep -E "^\| (fp16|int8|fp8)" $O/bench_$n.log; t
}
BA="--precisions fp16 --batch-sizes 16,64"
run f16_off TRTFORGE_TCG=0
run f16_tcg4 TRTFORGE_TCG=4 TRTFORGE_TCG4_DESC=$DM TRTFORGE_TCG4_LOG=1
echo "== TinyLlama check"
TRTFORGE_TCG=4 TRTFORGE_TCG4_DESC=$DM TRTFORGE_CHECKS=tcg4 timeout ${CHK_T:-75} $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/chk_tl.log 2>&1; echo rc=$?; grep -E "PASS|FAIL|passed|rror" $O/chk_tl.log | cut -c1-220 | tail -8; t
BA="--precisions int8 --batch-sizes 64"
[ -z "${NO_I8:-}" ] && { run i8_off TRTFORGE_TCG=0; run i8_tcg4 TRTFORGE_TCG=4 TRTFORGE_TCG4_DESC=$DM; }
echo "== ncu"
TRTFORGE_TCG=4 TRTFORGE_TCG4_DESC=$DM timeout ${NCU_T:-35} ncu --clock-control none --kernel-name regex:"tcg4_(qkv|o|gateup|down)_64" --launch-skip 88 --launch-count 4 --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 64 --input-lens 512 --output-len 4 --runs 1 --warmup 0 > $O/ncu.log 2>&1; echo rc=$?
grep -E "tcg4_|Duration|Memory Throughput|DRAM Throughput|Compute \(SM\)|Achieved Occupancy|Registers Per|Waves Per|Warp Cycles Per Issued|Cluster" $O/ncu.log | head -50; t
if [ -n "${EXTRA:-}" ]; then echo "== extra"; eval "$EXTRA"; t; fi
