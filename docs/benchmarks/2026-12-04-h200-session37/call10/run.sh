#!/usr/bin/env bash
# Session 37 call 10: the quantized decode GEMM in the engine (TRTFORGE_WQ=1: src/backend/cuda/wq.rs + kernels_wq.cu,
# the kernel of wq/wqe.cu). The `wq` check list first (TinyLlama shape, batched decode steps of 40 and 12 rows, int8 /
# int4 g128 / fp8 against the CPU reference, int8 greedy tokens), then bs64 prompt-512 rows with and without it
# alternated, then bs32, and the peer's fp16 bs1 beside the default fp16 bs1 row.
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/s37w.tgz -C /tmp/cz || exit 3
gunzip -f /tmp/cz/s37w/trtforge.gz && chmod +x /tmp/cz/s37w/trtforge
C=/tmp/cz/s37w; B=$C/trtforge; R=/tmp/c10; mkdir -p $R
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=$C/K
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
trap "tar czf $OUT/c10.tgz -C /tmp c10" EXIT
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; cat $C/commit.txt; sha256sum $B; } | tee $R/env.txt
TRTFORGE_WQ=1 TRTFORGE_CHECKS=wq timeout 150 $B cuda-check --tinyllama > $R/check_wq.log 2>&1
echo "check wq rc=$? $(t)"; grep -E "PASS|FAIL|passed|rror" $R/check_wq.log | cut -c1-220
bn() { # name precision batch [env...]
  local n=$1 p=$2 bs=$3; shift 3
  [ $(( $(date +%s) - T0 )) -gt 300 ] && { echo "$n skipped (time)"; return; }
  env "$@" timeout 60 $B bench --isolate never --model preset:tinyllama-1.1b --precisions $p --batch-sizes $bs --input-lens 512 --output-len 128 --json $R/$n.json > $R/$n.log 2>&1
  echo "$n rc=$? $(t) $(grep -E '^\| (fp|int)|rror' $R/$n.log | cut -c1-150)"; }
bn i4_wq int4 64 TRTFORGE_WQ=1; bn i4_def int4 64 X=1
bn i8_wq int8 64 TRTFORGE_WQ=1; bn i8_def int8 64 X=1
bn f8_wq fp8 64 TRTFORGE_WQ=1; bn f8_def fp8 64 X=1
bn f16_64 fp16 64 X=1
bn i4_wq_32 int4 32 TRTFORGE_WQ=1; bn i4_def_32 int4 32 X=1
bn f16_bs1 fp16 1 X=1
[ $(( $(date +%s) - T0 )) -lt 330 ] && PYTHONUNBUFFERED=1 timeout 60 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $R/torch_peer_fp16.json > $R/torch_peer_fp16.log 2>&1
echo "peer rc=$? $(t)"; grep -E "decode|rror" $R/torch_peer_fp16.log | tail -2
t
