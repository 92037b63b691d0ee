#!/usr/bin/env bash
# Prepared in session 35, NOT RUN (device budget spent): the megakernel's loop launches (next/mk-loop.patch, branch
# mk-loop 1c03caf on main ac04bac): TRTFORGE_MK_LOOP=1 runs the rest of a greedy loop as ONE mk_step launch of N steps;
# each step's last head tile does mk_advance's work and publishes the token as a tagged word the next step's layer 0
# polls (no step boundary; the ring streams the next step's first weights during the head).
# Build here (two binaries, both stripped, with their NVRTC caches; NVRTC 13.0: pip download nvidia-cuda-nvrtc==13.0.*):
#   main:   cargo build --release; cp target/release/trtforge .carry/ml/main/ ; strip
#   branch: git checkout -b mk-loop && git am docs/benchmarks/2026-12-04-h200-session35/next/mk-loop.patch;
#           cargo build --release; cp target/release/trtforge .carry/ml/loop/ ; strip
#   for b in main loop: LD_LIBRARY_PATH=<nvrtc lib> TRTFORGE_CACHE_DIR=.carry/ml/$b/K TRTFORGE_CUDA_PRECOMPILE=sm_90
#     TRTFORGE_MK=1 .carry/ml/$b/trtforge bench --isolate never --precisions fp16 --batch-sizes 1 --input-lens 512
#     --output-len 128 --model preset:tinyllama-1.1b    (errors out after caching the module)
#   gzip both binaries; tar czf .carry/z/ml.tgz -C .carry ml/main/{K,trtforge.gz} ml/loop/{K,trtforge.gz}; carry .carry/z.
# Checks first (the greedy-loop checks of TRTFORGE_CHECKS=mk run through the loop launch with TRTFORGE_MK_LOOP=1: 48 and
# 200 tokens vs the CPU, then the cache's next logits), then fp16 bs1 alternated: main MK, branch MK (one-step launches:
# what the loop's extra registers, 168 against 146, cost), branch MK + loop launches.
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/ml.tgz -C /tmp/cz && for b in main loop; do gunzip -f /tmp/cz/ml/$b/trtforge.gz && chmod +x /tmp/cz/ml/$b/trtforge; done
O=$OUT; J=/tmp/ml; mkdir -p $J; S=$(date +%s)
trap "tar czf $OUT/ml.tgz -C /tmp ml" EXIT
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_MK=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
# main first: its kernels_mk.cu cleanup (b05a65f) was not re-run on a GPU in session 35
TRTFORGE_CACHE_DIR=/tmp/cz/ml/main/K TRTFORGE_CHECKS=mk timeout 150 /tmp/cz/ml/main/trtforge cuda-check --tinyllama > $O/check_mk_main.log 2>&1
echo "check main rc=$? t=$(( $(date +%s) - S ))"; grep -E "PASS|FAIL|passed|rror" $O/check_mk_main.log | cut -c1-220
TRTFORGE_CACHE_DIR=/tmp/cz/ml/loop/K TRTFORGE_MK_LOOP=1 TRTFORGE_CHECKS=mk timeout 150 /tmp/cz/ml/loop/trtforge cuda-check --tinyllama > $O/check_mk_loop.log 2>&1
echo "check loop rc=$? t=$(( $(date +%s) - S ))"; grep -E "PASS|FAIL|passed|rror" $O/check_mk_loop.log | cut -c1-220
bench() { # name binary [env...]
  local n=$1 b=$2; shift 2
  env TRTFORGE_CACHE_DIR=/tmp/cz/ml/$b/K "$@" timeout 40 /tmp/cz/ml/$b/trtforge bench --isolate never --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --model preset:tinyllama-1.1b --json $J/$n.json > $J/$n.log 2>&1
  echo "$n rc=$? t=$(( $(date +%s) - S ))"; grep -E "^\| fp16|rror" $J/$n.log | cut -c1-200; }
for i in 1 2; do bench main_$i main X=1; bench loop1_$i loop X=1; bench loopN_$i loop TRTFORGE_MK_LOOP=1; done
echo "t=$(( $(date +%s) - S ))"
