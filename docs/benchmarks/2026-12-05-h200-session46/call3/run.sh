#!/usr/bin/env bash
# Session 46 call 3 (carry [".carry/z"], s46.tgz = `bash scripts/gpu_carry.sh s46`): two weight tiles a block for the
# quantized decode GEMM (TRTFORGE_WQ_M=128, kernels_wq.cu MT = 2), opt-in.
#  1. checks: TRTFORGE_WQ=1 (every layer linear on wq: qkv / o / down split K 8 ways, gate/up 2) + WQ_M=128, the `wq`
#     list (40 / 12-row decode logits vs the CPU reference, int8 greedy); then the same list at MT 1 as the control;
#  2. bench, one process a variant, prompt 512, 128 new: int4 / int8 / fp8 at bs 32, 64, default vs WQ_M=128, shape
#     variants of gate/up and down for int4, and fp16 for the ratio;
#  3. ncu (one metric) of the int4 bs64 step with WQ_M=128.
set -uo pipefail
mkdir -p /tmp/cz; [ -x /tmp/cz/s46/trtforge ] || { tar xzf .carry/z/s46.tgz -C /tmp/cz && gunzip -f /tmp/cz/s46/trtforge.gz \
  && chmod +x /tmp/cz/s46/trtforge; } || exit 3
B=/tmp/cz/s46/trtforge; R=$OUT/r; mkdir -p $R
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/cz/s46/K
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
bn() { # name precision batches [env...]
  local n=$1 p=$2 bs=$3; shift 3
  env "$@" timeout 80 $B bench --isolate never --model preset:tinyllama-1.1b --precisions $p --batch-sizes $bs \
    --input-lens 512 --output-len 128 --json $R/$n.json > $R/$n.log 2>&1
  echo "$n rc=$? $(t)"; grep -E '^\| (fp|int)|rror|compil' $R/$n.log | cut -c1-140; }
M=TRTFORGE_WQ_M=128
timeout 150 env TRTFORGE_WQ=1 $M TRTFORGE_CHECKS=wq $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama \
  > $R/check_wq_m128.log 2>&1; echo "check wq m128 rc=$? $(t)"; grep -E "PASS|FAIL|passed|rror" $R/check_wq_m128.log | cut -c1-200
bn i4_base int4 32,64 X=1
bn i4_m128 int4 32,64 $M
bn i4_m128_g1 int4 64 $M TRTFORGE_WQ_SHAPE=gateup:1x4
bn i4_m128_g4 int4 64 $M TRTFORGE_WQ_SHAPE=gateup:4x3
bn i4_m128_d4 int4 64 $M TRTFORGE_WQ_SHAPE=down:4x4
bn i4_m128_all int4 64 $M TRTFORGE_WQ=1
bn i8_base int8 64 X=1
bn i8_m128 int8 64 $M
bn f8_base fp8 64 X=1
bn f8_m128 fp8 64 $M
bn f16 fp16 64 X=1
timeout 100 env $M ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum \
  --csv --page raw --print-units base $B bench --isolate never \
  --model preset:tinyllama-1.1b --precisions int4 --batch-sizes 64 --input-lens 64 --output-len 2 --runs 1 --warmup 0 \
  > /tmp/ncu_m128.csv 2> $R/ncu_m128.err
echo "ncu rc=$? $(t)"; gzip -c /tmp/ncu_m128.csv > $R/ncu_m128.csv.gz
python3 docs/benchmarks/2026-12-05-h200-session41/call3/summarize.py /tmp/ncu_m128.csv 2>&1 | sed -n 3,12p
L=$(( 560 - $(date +%s) + T0 )); [ $L -gt 30 ] && timeout $L env TRTFORGE_WQ=1 TRTFORGE_CHECKS=wq $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama \
  > $R/check_wq_m64.log 2>&1; echo "check wq m64 rc=$? $(t)"; grep -E "PASS|FAIL|passed|rror" $R/check_wq_m64.log | cut -c1-200
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
