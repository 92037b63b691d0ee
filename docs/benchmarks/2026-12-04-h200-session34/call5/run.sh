#!/usr/bin/env bash
# Session 34, call 5 (the budget's last ≈ 280 s): main + MK_CSTAGE (.carry/z/m35.tgz): down's input staged chunk by chunk
# inside the megakernel's tile (TRTFORGE_MK_DEFS=MK_CSTAGE=1) — checks TRTFORGE_CHECKS=mk with it, then fp16 bs1 MK with
# and without it alternated.
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/m35.tgz -C /tmp/cz && gunzip -f /tmp/cz/m35/trtforge.gz && chmod +x /tmp/cz/m35/trtforge
M=/tmp/cz/m35; O=$OUT; J=/tmp/c5; mkdir -p $J; S=$(date +%s); left() { echo $(( 200 - ($(date +%s) - S) )); }
trap "tar czf $OUT/c5json.tgz -C /tmp c5" EXIT  # logs straight into $OUT (kept if the budget ends the call)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/km TRTFORGE_MK=1; mkdir -p /tmp/km; cp $M/K/* /tmp/km/
sha256sum $M/trtforge; cat $M/commit.txt; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
TRTFORGE_MK_DEFS=MK_CSTAGE=1 TRTFORGE_CHECKS=mk timeout 110 $M/trtforge cuda-check --tinyllama > $O/check_mk_cstage.log 2>&1; echo "check rc=$? t=$(( $(date +%s) - S ))"; grep -E "PASS|FAIL|passed|rror" $O/check_mk_cstage.log | cut -c1-220
bench() { # name defs
  local n=$1 defs=$2
  [ $(left) -gt 14 ] || { echo "$n skipped (time)"; return; }
  TRTFORGE_MK_DEFS=$defs timeout 30 $M/trtforge bench --isolate never --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --model preset:tinyllama-1.1b --json $J/$n.json > $O/$n.log 2>&1
  echo "$n rc=$? t=$(( $(date +%s) - S ))"; grep -E "^\| fp16|rror" $O/$n.log | cut -c1-200
}
for i in 1 2; do bench mk_cstage_$i MK_CSTAGE=1; bench mk_$i x; done
echo "t=$(( $(date +%s) - S ))"
