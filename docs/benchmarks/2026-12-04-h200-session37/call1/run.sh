#!/usr/bin/env bash
# Session 37 call 1 (main 76d449f = src fb0a5b2; kof = main + session 36's next/cxq-kof.patch):
# (a) the cxq check list with the 8-bit cx kernel, its tiny32 greedy lines fixed after session 36 call 4 (not re-run);
# (b) bs64 prompt 512 rows: kof against main on 8-bit KV caches; fp8 weights + fp8 KV with the new attention;
#     the quantized engines on session 6's tcg3 GEMM (TRTFORGE_TCG=3, codes read in the kernel) against the
#     default (cuBLASLt on the load-time f16 copy) — where the quantized bs64 1.4x goal stands on today's engine;
# (c) the peer's fp16 bs1 beside the default.
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/s37.tgz -C /tmp/cz || exit 3
for b in main kof; do gunzip -f /tmp/cz/s37/$b/trtforge.gz && chmod +x /tmp/cz/s37/$b/trtforge; done
R=/tmp/c1; mkdir -p $R
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
trap "tar czf $OUT/c1.tgz -C /tmp c1" EXIT
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; cat /tmp/cz/s37/commit.txt; sha256sum /tmp/cz/s37/*/trtforge; } | tee $R/env.txt
bn() { # name binary precision kv batch [env...]
  local n=$1 b=$2 p=$3 kv=$4 bs=$5; shift 5
  env TRTFORGE_CACHE_DIR=/tmp/cz/s37/$b/K "$@" timeout 60 /tmp/cz/s37/$b/trtforge bench --isolate never --model preset:tinyllama-1.1b --precisions $p --kv-cache $kv --batch-sizes $bs --input-lens 512 --output-len 128 --json $R/$n.json > $R/$n.log 2>&1
  echo "$n rc=$? $(t) $(grep -E '^\| (fp|int)|rror|tcg3 ' $R/$n.log | cut -c1-160)"; }
# (b) first: the GEMM question decides this session's work
bn i4_def main int4 fp16 64 X=1
bn i4_tcg3 main int4 fp16 64 TRTFORGE_TCG=3 TRTFORGE_TCG3_LOG=1
bn i8_def main int8 fp16 64 X=1
bn i8_tcg3 main int8 fp16 64 TRTFORGE_TCG=3 TRTFORGE_TCG3_LOG=1
bn f16_def main fp16 fp16 64 X=1
bn f8_tcg3 main fp8 fp16 64 TRTFORGE_TCG=3
bn f8kv_main main fp16 fp8 64 X=1
bn f8kv_kof kof fp16 fp8 64 X=1
bn i8kv_kof kof fp16 int8 64 X=1
bn i8kv_main main fp16 int8 64 X=1
bn w8f8kv main fp8 fp8 64 X=1
# (c) the peer
bn f16_bs1 main fp16 fp16 1 X=1
PYTHONUNBUFFERED=1 timeout 100 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $R/torch_peer_fp16.json > $R/torch_peer_fp16.log 2>&1
echo "peer rc=$? $(t)"; grep -E "decode|rror" $R/torch_peer_fp16.log | tail -2
# (a) checks last (CPU references make the list long; cut at 120 s)
TRTFORGE_CACHE_DIR=/tmp/cz/s37/main/K TRTFORGE_ATTN=cx8all TRTFORGE_ATTN_CS=1 TRTFORGE_CHECKS=cxq timeout 120 /tmp/cz/s37/main/trtforge cuda-check --tinyllama > $R/check_cxq8.log 2>&1
echo "check cxq8 rc=$? $(t)"; grep -E "FAIL|passed" $R/check_cxq8.log | cut -c1-230
t
