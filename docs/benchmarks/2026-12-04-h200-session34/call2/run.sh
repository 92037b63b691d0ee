#!/usr/bin/env bash
# Session 34, call 2: branch w8 (.carry/z/w8.tgz, commit in commit.txt): ring slots of MK_SUB layer chunks (int8 2, int4 4)
# after call 1 showed one 8 KB / 4 KB chunk a slot slower than f16 (760 / 871 µs against 718). Checks TRTFORGE_CHECKS=mkq,
# then trtforge bench bs1 (prompt 512, 128 new): MK int8 / int4 / fp16 against the default path and main's fp16 MK
# (.carry/z/base.tgz, a3d0eec), and the diagnostic rings TRTFORGE_MK_RING=2,6 (fp16: two chunks a slot) and 4,6 (int8).
set -uo pipefail
mkdir -p /tmp/cz; for z in w8 base; do tar xzf .carry/z/$z.tgz -C /tmp/cz && gunzip -f /tmp/cz/$z/trtforge.gz && chmod +x /tmp/cz/$z/trtforge; done
W=/tmp/cz/w8; B=/tmp/cz/base; O=/tmp/c2; mkdir -p $O; S=$(date +%s); left() { echo $(( 520 - ($(date +%s) - S) )); }
trap 'tar czf $OUT/c2.tgz -C /tmp c2' EXIT
export LD_LIBRARY_PATH=/usr/local/cuda/lib64; mkdir -p /tmp/kw /tmp/kb; cp $W/K/* /tmp/kw/; cp $B/K/* /tmp/kb/
sha256sum $W/trtforge $B/trtforge; cat $W/commit.txt $B/commit.txt; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
TRTFORGE_CACHE_DIR=/tmp/kw TRTFORGE_MK=1 TRTFORGE_CHECKS=mkq timeout 240 $W/trtforge cuda-check --tinyllama > $O/check_mkq.log 2>&1; echo "check rc=$? t=$(( $(date +%s) - S ))"; grep -E "PASS|FAIL|passed|rror" $O/check_mkq.log | cut -c1-300
bench() { # name bin cache mk ring precision
  local n=$1 bin=$2 kc=$3 mk=$4 ring=$5 p=$6
  [ $(left) -gt 30 ] || { echo "$n skipped (time)"; return; }
  TRTFORGE_MK_RING=$ring TRTFORGE_CACHE_DIR=$kc TRTFORGE_MK=$mk timeout 60 $bin bench --isolate never --precisions $p --batch-sizes 1 --input-lens 512 --output-len 128 --model preset:tinyllama-1.1b --json $O/$n.json > $O/$n.log 2>&1
  echo "$n rc=$? t=$(( $(date +%s) - S ))"; grep -E "^\| (fp16|int8|int4)|rror|note|TRTFORGE_MK" $O/$n.log | cut -c1-200
}
for i in 1 2; do
  bench mk_int8_$i $W/trtforge /tmp/kw 1 x int8; bench def_int8_$i $W/trtforge /tmp/kw 0 x int8
  bench mk_int4_$i $W/trtforge /tmp/kw 1 x int4; bench def_int4_$i $W/trtforge /tmp/kw 0 x int4
  bench mk_fp16_$i $W/trtforge /tmp/kw 1 x fp16; bench base_mk_fp16_$i $B/trtforge /tmp/kb 1 x fp16
done
bench mk_fp16_ring26 $W/trtforge /tmp/kw 1 2,6 fp16
bench mk_int8_ring46 $W/trtforge /tmp/kw 1 4,6 int8
echo "t=$(( $(date +%s) - S ))"
