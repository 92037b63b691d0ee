#!/usr/bin/env bash
# Session 46 call 5 (carry [".carry/z"], s46.tgz rebuilt = `bash scripts/gpu_carry.sh s46` with the wqp kernels):
# the pipelined quantized decode GEMM (TRTFORGE_WQ_PIPE=1: convert stage s while stage s − 1's MMAs run).
#  1. bench bs64 (prompt 512, 128 new), one process a variant: int4 default vs PIPE (and bs32), int8 / fp8 PIPE vs
#     default;
#  2. the `wq` check list with TRTFORGE_WQ=1 TRTFORGE_WQ_PIPE=1 (every layer linear on wqp; 40-row logits vs CPU).
set -uo pipefail
mkdir -p /tmp/cz; [ -x /tmp/cz/s46/trtforge ] || { tar xzf .carry/z/s46.tgz -C /tmp/cz && gunzip -f /tmp/cz/s46/trtforge.gz \
  && chmod +x /tmp/cz/s46/trtforge; } || exit 3
B=/tmp/cz/s46/trtforge; R=$OUT/r5; mkdir -p $R
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/cz/s46/K
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
bn() { # name precision batches [env...]
  local n=$1 p=$2 bs=$3; shift 3
  env "$@" timeout 80 $B bench --isolate never --model preset:tinyllama-1.1b --precisions $p --batch-sizes $bs \
    --input-lens 512 --output-len 128 --json $R/$n.json > $R/$n.log 2>&1
  echo "$n rc=$? $(t)"; grep -E '^\| (fp|int)|rror|compil' $R/$n.log | cut -c1-140; }
P=TRTFORGE_WQ_PIPE=1
bn i4_base int4 64 X=1
bn i4_pipe int4 32,64 $P
bn i8_pipe int8 64 $P
bn f8_pipe fp8 64 $P
bn i8_base int8 64 X=1
L=$(( 330 - $(date +%s) + T0 )); echo "check gets ${L} s"
timeout $L env TRTFORGE_WQ=1 $P TRTFORGE_CHECKS=wq $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama \
  > $R/check_wq_pipe.log 2>&1; echo "check wq pipe rc=$? $(t)"; grep -E "PASS|FAIL|passed|rror" $R/check_wq_pipe.log | cut -c1-200
tar czf $OUT/r5.tgz -C $OUT r5 && rm -rf $R
t
