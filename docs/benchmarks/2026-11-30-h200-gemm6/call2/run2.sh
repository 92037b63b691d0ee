#!/usr/bin/env bash
# Helper G (session 6, branch gemm6), call 2: tcg3 v2 (mma order, n-tiles < T only, cluster-occupancy
# shape pick) vs cuBLAS: bench fp16 bs16/64 + int8 bs64 A/B, checks, ncu of one gate/up + down launch.
set -uo pipefail
C=.carry/G; B=$C/trtforge; O=/tmp/g2; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/run*.sh $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/g2.tgz -C /tmp g2; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
run() { # name env... -- bench args
  local n=$1; shift
  env "$@" timeout 60 $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --runs 1 --json $O/bench_$n.json $BA > $O/bench_$n.log 2>&1; echo "bench $n rc=$?"
  grep -E "eager decode|picked" $O/bench_$n.log | cut -c1-330; grep -E "^\| (fp16|int8)" $O/bench_$n.log; t
}
BA="--precisions fp16 --batch-sizes 16,64"
run f16_off TRTFORGE_TCG=0
run f16_tcg3 TRTFORGE_TCG=3 TRTFORGE_TCG3_LOG=1
BA="--precisions int8 --batch-sizes 64"
run i8_off TRTFORGE_TCG=0
run i8_tcg3 TRTFORGE_TCG=3
echo "== checks"
TRTFORGE_TCG=3 TRTFORGE_CHECKS=tcg timeout ${CHK_T:-40} $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_tcg3.log 2>&1; echo rc=$?; grep -E "PASS|FAIL|passed|error" $O/check_tcg3.log | cut -c1-200 | tail -8; t
echo "== ncu"
TRTFORGE_TCG=3 timeout ${NCU_T:-32} ncu --clock-control none --kernel-name regex:"tcg3_f16_(gateup|down|o)" --launch-skip 66 --launch-count 3 --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 64 --input-lens 512 --output-len 4 > $O/ncu.log 2>&1; echo rc=$?
grep -E "tcg3_|Duration|Memory Throughput|DRAM Throughput|Compute \(SM\)|Achieved Occupancy|Registers Per|Block Limit|Waves Per|Warp Cycles Per Issued|Stall|Cluster" $O/ncu.log | head -60; t
