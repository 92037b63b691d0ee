#!/usr/bin/env bash
# Prepared in session 34, NOT RUN (device budget spent): MK_CSTAGE=2 on main (the commit that adds it, or later) — down's
# input staged per warp (each warp only its own k-tiles' x values, loaded one chunk ahead, __syncwarp, no block barrier).
# Build here: cargo build --release; mkdir -p .carry/m36/K; cp target/release/trtforge .carry/m36/ && strip it; git rev-parse
# HEAD > .carry/m36/commit.txt; precompile both modules with NVRTC 13.0 (pip nvidia-cuda-nvrtc==13.0.*):
#   for d in x MK_CSTAGE=2; do LD_LIBRARY_PATH=<nvrtc lib> TRTFORGE_MK_DEFS=$d TRTFORGE_CACHE_DIR=.carry/m36/K \
#     TRTFORGE_CUDA_PRECOMPILE=sm_90 TRTFORGE_MK=1 .carry/m36/trtforge bench --isolate never --precisions fp16 \
#     --batch-sizes 1 --input-lens 512 --output-len 128 --model preset:tinyllama-1.1b; done
# then gzip the binary and tar K/ commit.txt trtforge.gz into .carry/z/m36.tgz (64 MiB a call); carry .carry/z.
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/m36.tgz -C /tmp/cz && gunzip -f /tmp/cz/m36/trtforge.gz && chmod +x /tmp/cz/m36/trtforge
M=/tmp/cz/m36; O=$OUT; J=/tmp/n; mkdir -p $J; S=$(date +%s)
trap "tar czf $OUT/json.tgz -C /tmp n" EXIT
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/km TRTFORGE_MK=1; mkdir -p /tmp/km; cp $M/K/* /tmp/km/
sha256sum $M/trtforge; cat $M/commit.txt; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
TRTFORGE_MK_DEFS=MK_CSTAGE=2 TRTFORGE_CHECKS=mk timeout 120 $M/trtforge cuda-check --tinyllama > $O/check_mk_cstage2.log 2>&1; echo "check rc=$?"; grep -E "PASS|FAIL|passed|rror" $O/check_mk_cstage2.log | cut -c1-220
bench() { TRTFORGE_MK_DEFS=$2 timeout 40 $M/trtforge bench --isolate never --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --model preset:tinyllama-1.1b --json $J/$1.json > $O/$1.log 2>&1; echo "$1 rc=$?"; grep -E "^\| fp16|rror" $O/$1.log | cut -c1-200; }
for i in 1 2; do bench mk_cstage2_$i MK_CSTAGE=2; bench mk_$i x; done
echo "t=$(( $(date +%s) - S ))"
