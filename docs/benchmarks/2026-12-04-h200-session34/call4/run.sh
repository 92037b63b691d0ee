#!/usr/bin/env bash
# Session 34, call 4: branch w8 + TRTFORGE_MK_DEFS (.carry/z/w8n.tgz, commit in commit.txt): the megakernel's streaming
# ceiling per layer format — MK_NOWAIT=1 (every reader takes the first value it loads: no dependency waits, wrong results,
# the ring's flow control kept) beside the normal build, fp16 / int8 (2 chunks a slot) / int4 g128 (4 a slot, and 1 a slot),
# trtforge bench bs1 (prompt 512, 128 new). Call 2 showed the step time does not follow the bytes (f16 729, int8 723,
# int4 925 µs): this says whether the waits or the consumers' own work bound it.
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/w8n.tgz -C /tmp/cz && gunzip -f /tmp/cz/w8n/trtforge.gz && chmod +x /tmp/cz/w8n/trtforge
W=/tmp/cz/w8n; O=/tmp/c4; mkdir -p $O; S=$(date +%s); left() { echo $(( 330 - ($(date +%s) - S) )); }
trap 'tar czf $OUT/c4.tgz -C /tmp c4' EXIT
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kw TRTFORGE_MK=1; mkdir -p /tmp/kw; cp $W/K/* /tmp/kw/
sha256sum $W/trtforge; cat $W/commit.txt; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
bench() { # name defs ring precision
  local n=$1 defs=$2 ring=$3 p=$4
  [ $(left) -gt 25 ] || { echo "$n skipped (time)"; return; }
  TRTFORGE_MK_DEFS=$defs TRTFORGE_MK_RING=$ring timeout 50 $W/trtforge bench --isolate never --precisions $p --batch-sizes 1 --input-lens 512 --output-len 128 --model preset:tinyllama-1.1b --json $O/$n.json > $O/$n.log 2>&1
  echo "$n rc=$? t=$(( $(date +%s) - S ))"; grep -E "^\| (fp16|int8|int4)|rror" $O/$n.log | cut -c1-200
}
bench f16 x x fp16; bench f16_nowait MK_NOWAIT=1 x fp16
bench i8 x x int8; bench i8_nowait MK_NOWAIT=1 x int8
bench i4 x x int4; bench i4_nowait MK_NOWAIT=1 x int4
bench i4_sub1_nowait MK_NOWAIT=1 1,12 int4
echo "t=$(( $(date +%s) - S ))"
