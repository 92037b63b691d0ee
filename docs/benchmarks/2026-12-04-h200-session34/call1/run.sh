#!/usr/bin/env bash
# Session 34, call 1: branch w8 (.carry/w8: mk-next + the megakernel's int8 / int4 g128 chunks, commit in commit.txt)
# beside main a3d0eec (.carry/base). Checks TRTFORGE_CHECKS=mkq (int8 / int4 megakernel vs the CPU reference, the fp16
# loop with mk_advance writing the history), then trtforge bench bs1 (prompt 512, 128 new) per precision with and
# without TRTFORGE_MK=1, and fp16 MK of main vs the branch (mk-next).
set -uo pipefail
# Carried as .carry/z/{w8,base}.tgz (stripped binary gzipped + NVRTC caches K/ + commit.txt): 64 MiB a call.
mkdir -p /tmp/cz; for z in w8 base; do tar xzf .carry/z/$z.tgz -C /tmp/cz && gunzip -f /tmp/cz/$z/trtforge.gz && chmod +x /tmp/cz/$z/trtforge; done
W=/tmp/cz/w8; B=/tmp/cz/base; O=/tmp/c1; mkdir -p $O; S=$(date +%s); left() { echo $(( 540 - ($(date +%s) - S) )); }
trap 'tar czf $OUT/c1.tgz -C /tmp c1' EXIT
export LD_LIBRARY_PATH=/usr/local/cuda/lib64; mkdir -p /tmp/kw /tmp/kb; cp $W/K/* /tmp/kw/; cp $B/K/* /tmp/kb/
sha256sum $W/trtforge $B/trtforge; cat $W/commit.txt $B/commit.txt; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
TRTFORGE_CACHE_DIR=/tmp/kw TRTFORGE_MK=1 TRTFORGE_CHECKS=mkq timeout 260 $W/trtforge cuda-check --tinyllama > $O/check_mkq.log 2>&1; echo "check rc=$? t=$(( $(date +%s) - S ))"; grep -E "PASS|FAIL|passed|rror" $O/check_mkq.log | cut -c1-400
bench() { # name bin cache mk precision
  local n=$1 bin=$2 kc=$3 mk=$4 p=$5
  [ $(left) -gt 45 ] || { echo "$n skipped (time)"; return; }
  TRTFORGE_CACHE_DIR=$kc TRTFORGE_MK=$mk timeout 75 $bin bench --isolate never --precisions $p --batch-sizes 1 --input-lens 512 --output-len 128 --model preset:tinyllama-1.1b --json $O/$n.json > $O/$n.log 2>&1
  echo "$n rc=$? t=$(( $(date +%s) - S ))"; grep -E "^\| (fp16|int8|int4)|rror|note|TRTFORGE_MK" $O/$n.log | cut -c1-300
}
bench w8_mk_int8 $W/trtforge /tmp/kw 1 int8
bench w8_def_int8 $W/trtforge /tmp/kw 0 int8
bench w8_mk_int4 $W/trtforge /tmp/kw 1 int4
bench w8_def_int4 $W/trtforge /tmp/kw 0 int4
bench w8_mk_fp16 $W/trtforge /tmp/kw 1 fp16
bench base_mk_fp16 $B/trtforge /tmp/kb 1 fp16
bench w8_mk_int8_2 $W/trtforge /tmp/kw 1 int8
bench w8_mk_int4_2 $W/trtforge /tmp/kw 1 int4
bench w8_mk_fp16_2 $W/trtforge /tmp/kw 1 fp16
bench base_mk_fp16_2 $B/trtforge /tmp/kb 1 fp16
echo "t=$(( $(date +%s) - S ))"
