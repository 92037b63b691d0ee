#!/usr/bin/env bash
# Session 38 call 2: whether `TRTFORGE_WQ=1` can be the default for int8 / int4 g128 / fp8 engines — bs16 / 32 / 64
# (prompt 512, 128 new) with and without it, one process per precision and switch (the same weights and tokens for
# every row of a process), beside fp16 and the peer's fp16 bs1 in the same lease; then TRTFORGE_WQ_ROLES (new
# diagnostic): only gate/up, only qkv + o, only down on the quantized GEMM at int4 bs64 — each one's share of the step.
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/s38.tgz -C /tmp/cz || exit 3
gunzip -f /tmp/cz/s38/trtforge.gz && chmod +x /tmp/cz/s38/trtforge
C=/tmp/cz/s38; B=$C/trtforge; R=/tmp/c2; mkdir -p $R
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=$C/K
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
trap "tar czf $OUT/c2.tgz -C /tmp c2" EXIT
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; cat $C/commit.txt; sha256sum $B; } | tee $R/env.txt
bn() { # name precision batches [env...]
  local n=$1 p=$2 bs=$3; shift 3
  [ $(( $(date +%s) - T0 )) -gt ${LIM:-540} ] && { echo "$n skipped (time)"; return; }
  env "$@" timeout 100 $B bench --isolate never --model preset:tinyllama-1.1b --precisions $p --batch-sizes $bs --input-lens 512 --output-len 128 --json $R/$n.json > $R/$n.log 2>&1
  echo "$n rc=$? $(t)"; grep -E '^\| (fp|int)|rror' $R/$n.log | cut -c1-120; }
bn i4_wq int4 16,32,64 TRTFORGE_WQ=1
bn i4_def int4 16,32,64 X=1
bn f8_wq fp8 16,32,64 TRTFORGE_WQ=1
bn f8_def fp8 16,32,64 X=1
bn i8_wq int8 16,32,64 TRTFORGE_WQ=1
bn i8_def int8 16,32,64 X=1
bn f16 fp16 1,16,32,64 X=1
PYTHONUNBUFFERED=1 timeout 100 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $R/torch_peer_fp16.json > $R/torch_peer_fp16.log 2>&1
echo "peer rc=$? $(t)"; grep -E "decode|rror" $R/torch_peer_fp16.log | tail -2
LIM=500 bn i4_gu int4 64 TRTFORGE_WQ=1 TRTFORGE_WQ_ROLES=gateup
LIM=500 bn i4_qo int4 64 TRTFORGE_WQ=1 TRTFORGE_WQ_ROLES=qkv,o
LIM=500 bn i4_dn int4 64 TRTFORGE_WQ=1 TRTFORGE_WQ_ROLES=down
t
