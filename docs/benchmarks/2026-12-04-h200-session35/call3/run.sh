#!/usr/bin/env bash
# Session 35, call 3: the megakernel with 16 consumer warps (TRTFORGE_MK_DEFS=MK_NCW=16: two k-tiles a warp and chunk,
# 4 / 11 staged values a thread; 87 registers, no spills; the host launches 576 threads) — call 2's Nsight Compute
# profile: 2.5 active warps a scheduler, 0.2-0.5 eligible, stalls on long scoreboard / fixed-latency chains. Checks
# TRTFORGE_CHECKS=mk with it, then fp16 bs1 MK 8 vs 16 consumer warps alternated, and its wait-free ceiling.
# Carry: .carry/z/m38.tgz (binary + NVRTC modules precompiled here, NVRTC 13.0.88).
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/m38.tgz -C /tmp/cz && gunzip -f /tmp/cz/m38/trtforge.gz && chmod +x /tmp/cz/m38/trtforge
M=/tmp/cz/m38; O=$OUT; J=/tmp/c3; mkdir -p $J; S=$(date +%s); left() { echo $(( 330 - ($(date +%s) - S) )); }
trap "tar czf $OUT/c3json.tgz -C /tmp c3" EXIT
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/km TRTFORGE_MK=1; mkdir -p /tmp/km; cp $M/K/* /tmp/km/
sha256sum $M/trtforge; cat $M/commit.txt; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
bench() { # name defs
  local n=$1 defs=$2
  [ $(left) -gt 14 ] || { echo "$n skipped (time)"; return; }
  TRTFORGE_MK_DEFS=$defs timeout 30 $M/trtforge bench --isolate never --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --model preset:tinyllama-1.1b --json $J/$n.json > $J/$n.log 2>&1
  echo "$n rc=$? t=$(( $(date +%s) - S ))"; grep -E "^\| fp16|rror" $J/$n.log | cut -c1-200
}
bench n16_1 MK_NCW=16; bench mk_1 x
TRTFORGE_MK_DEFS=MK_NCW=16 TRTFORGE_CHECKS=mk timeout 110 $M/trtforge cuda-check --tinyllama > $O/check_mk_ncw16.log 2>&1; echo "check rc=$? t=$(( $(date +%s) - S ))"; grep -E "PASS|FAIL|passed|rror" $O/check_mk_ncw16.log | cut -c1-220
bench n16_2 MK_NCW=16; bench mk_2 x; bench n16nw MK_NCW=16,MK_NOWAIT=1; bench n16_3 MK_NCW=16; bench mk_3 x
echo "t=$(( $(date +%s) - S ))"
