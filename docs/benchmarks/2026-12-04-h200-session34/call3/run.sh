#!/usr/bin/env bash
# Session 34, call 3: main ebf7f7a (= a3d0eec + mk-next; .carry/z/m34.tgz) — the megakernel check set (fp16), then
# trtforge bench fp16 (prompt 512, 128 new) at bs1 (default and TRTFORGE_MK=1), bs8 and bs64 alternated with session 32's
# main 49d35f8 (.carry/z/p32.tgz: before the greedy loop's hist_put steps at b > 1, session 33's open question), and the
# torch.compile peer at bs1, in one lease.
set -uo pipefail
mkdir -p /tmp/cz; for z in m34 p32; do tar xzf .carry/z/$z.tgz -C /tmp/cz && gunzip -f /tmp/cz/$z/trtforge.gz && chmod +x /tmp/cz/$z/trtforge; done
M=/tmp/cz/m34; P=/tmp/cz/p32; O=/tmp/c3; mkdir -p $O; S=$(date +%s); left() { echo $(( 560 - ($(date +%s) - S) )); }
trap 'tar czf $OUT/c3.tgz -C /tmp c3' EXIT
export LD_LIBRARY_PATH=/usr/local/cuda/lib64; mkdir -p /tmp/km /tmp/kp; cp $M/K/* /tmp/km/; cp $P/K/* /tmp/kp/
sha256sum $M/trtforge $P/trtforge; cat $M/commit.txt $P/commit.txt; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
TRTFORGE_CACHE_DIR=/tmp/km TRTFORGE_MK=1 TRTFORGE_CHECKS=mk timeout 200 $M/trtforge cuda-check --tinyllama > $O/check_mk.log 2>&1; echo "check rc=$? t=$(( $(date +%s) - S ))"; grep -E "PASS|FAIL|passed|rror" $O/check_mk.log | cut -c1-250
bench() { # name bin cache mk batch
  local n=$1 bin=$2 kc=$3 mk=$4 b=$5
  [ $(left) -gt 40 ] || { echo "$n skipped (time)"; return; }
  TRTFORGE_CACHE_DIR=$kc TRTFORGE_MK=$mk timeout 60 $bin bench --isolate never --precisions fp16 --batch-sizes $b --input-lens 512 --output-len 128 --model preset:tinyllama-1.1b --json $O/$n.json > $O/$n.log 2>&1
  echo "$n rc=$? t=$(( $(date +%s) - S ))"; grep -E "^\| fp16|rror" $O/$n.log | cut -c1-200
}
for i in 1 2; do bench m34_def_bs1_$i $M/trtforge /tmp/km 0 1; bench m34_mk_bs1_$i $M/trtforge /tmp/km 1 1; done
for i in 1 2; do bench m34_bs8_$i $M/trtforge /tmp/km 0 8; bench p32_bs8_$i $P/trtforge /tmp/kp 0 8; done
CT=$(( $(left) - 5 )); [ $CT -gt 100 ] && CT=100
[ $CT -gt 50 ] && { PYTHONUNBUFFERED=1 timeout $CT python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer_fp16.json > $O/torch_peer_fp16.log 2>&1; echo "peer rc=$? t=$(( $(date +%s) - S ))"; grep -E "decode|rror" $O/torch_peer_fp16.log | tail -3; }
for i in 1 2; do bench m34_bs64_$i $M/trtforge /tmp/km 0 64; bench p32_bs64_$i $P/trtforge /tmp/kp 0 64; done
echo "t=$(( $(date +%s) - S ))"
