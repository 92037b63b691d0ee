#!/usr/bin/env bash
# Session 36 call 1: session 35's prepared next/run_mk_loop.sh (main f4188b0 = src ac04bac, branch mk-loop 1c03caf)
# plus the default path and the peer. Binaries built here, stripped, NVRTC-cached for sm_90a (TRTFORGE_MK=1 module),
# carried as .carry/z/ml.tgz (ml/{main,loop}/{K,trtforge.gz}, ml/commit.txt).
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/ml.tgz -C /tmp/cz && for b in main loop; do gunzip -f /tmp/cz/ml/$b/trtforge.gz && chmod +x /tmp/cz/ml/$b/trtforge; done
O=/tmp/ml; mkdir -p $O; S=$(date +%s)
trap "tar czf $OUT/ml.tgz -C /tmp ml" EXIT
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_MK=1
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; cat /tmp/cz/ml/commit.txt; sha256sum /tmp/cz/ml/*/trtforge; } | tee $O/env.txt
# main first: its kernels_mk.cu cleanup (b05a65f) and ring cursor (ac04bac) were not run on a GPU in session 35
TRTFORGE_CACHE_DIR=/tmp/cz/ml/main/K TRTFORGE_CHECKS=mk timeout 150 /tmp/cz/ml/main/trtforge cuda-check --tinyllama > $O/check_mk_main.log 2>&1
echo "check main rc=$? t=$(( $(date +%s) - S ))"; grep -E "PASS|FAIL|passed|rror" $O/check_mk_main.log | cut -c1-220
TRTFORGE_CACHE_DIR=/tmp/cz/ml/loop/K TRTFORGE_MK_LOOP=1 TRTFORGE_CHECKS=mk timeout 150 /tmp/cz/ml/loop/trtforge cuda-check --tinyllama > $O/check_mk_loop.log 2>&1
echo "check loop rc=$? t=$(( $(date +%s) - S ))"; grep -E "PASS|FAIL|passed|rror" $O/check_mk_loop.log | cut -c1-220
bench() { # name binary [env...]
  local n=$1 b=$2; shift 2
  env TRTFORGE_CACHE_DIR=/tmp/cz/ml/$b/K "$@" timeout 40 /tmp/cz/ml/$b/trtforge bench --isolate never --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --model preset:tinyllama-1.1b --json $O/$n.json > $O/$n.log 2>&1
  echo "$n rc=$? t=$(( $(date +%s) - S ))"; grep -E "^\| fp16|rror" $O/$n.log | cut -c1-200; }
for i in 1 2; do bench main_$i main X=1; bench loop1_$i loop X=1; bench loopN_$i loop TRTFORGE_MK_LOOP=1; done
bench default_1 main TRTFORGE_MK=0
PYTHONUNBUFFERED=1 timeout 100 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer_fp16.json > $O/torch_peer_fp16.log 2>&1
echo "peer rc=$? t=$(( $(date +%s) - S ))"; grep -E "decode|rror" $O/torch_peer_fp16.log | tail -3
bench loopN_3 loop TRTFORGE_MK_LOOP=1; bench main_3 main X=1
echo "t=$(( $(date +%s) - S ))"
