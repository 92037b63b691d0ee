#!/usr/bin/env bash
# Prepared for the next session (not run): what `TRTFORGE_WQ=1` needs before it can be the default for int8 / int4 g128
# / fp8 engines on cc 9.0 — the rest of its check list (session 37 call 10 cut it at 150 s after int8 / int4 40 rows
# passed), serve's paged engine with it, and bs16 / 32 / 64 rows with and without it beside the peer.
# Build here first (main at or after session 37's wq commit; session 37 left it built from 00b12d5 in .carry/z/wqd.tgz, with
# the int4 / int8 / fp8 modules with and without TRTFORGE_WQ=1 precompiled — rebuild if src changed since):
#   cargo build --release && mkdir -p .carry/wqd/K && strip -o .carry/wqd/trtforge target/release/trtforge
#   for p in int4 int8 fp8; do for wq in 0 1; do TRTFORGE_WQ=$wq LD_LIBRARY_PATH=<nvrtc lib> TRTFORGE_CACHE_DIR=.carry/wqd/K \
#     TRTFORGE_CUDA_PRECOMPILE=sm_90 .carry/wqd/trtforge bench --isolate never --model preset:tinyllama-1.1b --precisions $p \
#     --batch-sizes 64 --input-lens 512 --output-len 128; done; done   # (also with TRTFORGE_KV=paged for the paged module)
#   gzip .carry/wqd/trtforge && tar czf .carry/z/wqd.tgz -C .carry wqd       # carry [".carry/z"]; ~450 s of device time
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/wqd.tgz -C /tmp/cz || exit 3
gunzip -f /tmp/cz/wqd/trtforge.gz && chmod +x /tmp/cz/wqd/trtforge
C=/tmp/cz/wqd; B=$C/trtforge; R=/tmp/wqd; mkdir -p $R
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=$C/K
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
trap "tar czf $OUT/wqd.tgz -C /tmp wqd" EXIT
TRTFORGE_WQ=1 TRTFORGE_CHECKS=wq timeout 330 $B cuda-check --tinyllama > $R/check_wq.log 2>&1
echo "check wq rc=$? $(t)"; grep -E "FAIL|passed" $R/check_wq.log | cut -c1-220
# (check first that a quantized TinyLlama paged case decodes 9..64 rows; add one to the paged set if not)
TRTFORGE_WQ=1 timeout 200 $B cuda-check --tinyllama --paged > $R/check_paged.log 2>&1
echo "check paged rc=$? $(t)"; grep -E "FAIL|passed" $R/check_paged.log | cut -c1-220
bn() { # name precision batch [env...]
  local n=$1 p=$2 bs=$3; shift 3
  env "$@" timeout 60 $B bench --isolate never --model preset:tinyllama-1.1b --precisions $p --batch-sizes $bs --input-lens 512 --output-len 128 --json $R/$n.json > $R/$n.log 2>&1
  echo "$n rc=$? $(t) $(grep -E '^\| (fp|int)|rror' $R/$n.log | cut -c1-150)"; }
for bs in 64 32 16; do bn i4_wq_$bs int4 $bs TRTFORGE_WQ=1; bn i4_$bs int4 $bs X=1; done
bn f16_64 fp16 64 X=1; bn f8_wq_64 fp8 64 TRTFORGE_WQ=1; bn i8_wq_64 int8 64 TRTFORGE_WQ=1
PYTHONUNBUFFERED=1 timeout 100 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $R/torch_peer_fp16.json > $R/torch_peer_fp16.log 2>&1
echo "peer rc=$? $(t)"; grep -E "decode|rror" $R/torch_peer_fp16.log | tail -2
