#!/usr/bin/env bash
# Session 35, call 1: the megakernel's per-warp chunk staging (TRTFORGE_MK_DEFS, all off by default): MK_CSTAGE=2 (down's
# input), MK_CSTO=1 (o's input: chunk c waits only for kv head c's merge), MK_CSTN=1 (qkv's and gate/up's normed inputs
# staged unscaled, the RMS scale applied in the epilogue). Checks TRTFORGE_CHECKS=mk with all three, then fp16 bs1 MK
# alternated over the variants. Carry: .carry/z/m37.tgz (binary + NVRTC modules precompiled here, NVRTC 13.0.88).
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/m37.tgz -C /tmp/cz && gunzip -f /tmp/cz/m37/trtforge.gz && chmod +x /tmp/cz/m37/trtforge
M=/tmp/cz/m37; O=$OUT; J=/tmp/c1; mkdir -p $J; S=$(date +%s); left() { echo $(( 400 - ($(date +%s) - S) )); }
trap "tar czf $OUT/c1json.tgz -C /tmp c1" EXIT  # logs straight into $OUT
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/km TRTFORGE_MK=1; mkdir -p /tmp/km; cp $M/K/* /tmp/km/
sha256sum $M/trtforge; cat $M/commit.txt; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
ALL=MK_CSTAGE=2,MK_CSTO=1,MK_CSTN=1
bench() { # name defs
  local n=$1 defs=$2
  [ $(left) -gt 14 ] || { echo "$n skipped (time)"; return; }
  TRTFORGE_MK_DEFS=$defs timeout 30 $M/trtforge bench --isolate never --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --model preset:tinyllama-1.1b --json $J/$n.json > $O/$n.log 2>&1
  echo "$n rc=$? t=$(( $(date +%s) - S ))"; grep -E "^\| fp16|rror" $O/$n.log | cut -c1-200
}
bench all_1 $ALL; bench mk_1 x
TRTFORGE_MK_DEFS=$ALL TRTFORGE_CHECKS=mk timeout 110 $M/trtforge cuda-check --tinyllama > $O/check_mk_all.log 2>&1; echo "check rc=$? t=$(( $(date +%s) - S ))"; grep -E "PASS|FAIL|passed|rror" $O/check_mk_all.log | cut -c1-220
for i in 1 2; do bench c2_$i MK_CSTAGE=2; bench c2o_$i MK_CSTAGE=2,MK_CSTO=1; bench n_$i MK_CSTN=1; [ $i = 1 ] && bench all_2 $ALL; bench mk_$((i+1)) x; done
echo "t=$(( $(date +%s) - S ))"
