#!/usr/bin/env bash
# Session 33, call 3: branch mk-engine at the commit in .carry/s33/commit.txt (mk_advance + greedy-loop graphs of 16 steps
# with hist_put) beside main's build (.carry/s30a, src/ unchanged since 80664d4): checks, then bench alternated, then the peer.
set -uo pipefail
N=.carry/s33; M=.carry/s30a; O=/tmp/c3; mkdir -p $O; S=$(date +%s); left() { echo $(( 575 - ($(date +%s) - S) )); }
trap 'tar czf $OUT/c3.tgz -C /tmp c3' EXIT
export LD_LIBRARY_PATH=/usr/local/cuda/lib64; mkdir -p /tmp/kn /tmp/km; cp $N/K/* /tmp/kn/; cp $M/K/* /tmp/km/
sha256sum $N/trtforge $M/trtforge; cat $N/commit.txt; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
TRTFORGE_CACHE_DIR=/tmp/kn TRTFORGE_MK=1 TRTFORGE_CHECKS=mk timeout 300 $N/trtforge cuda-check --tinyllama > $O/check_mk.log 2>&1; echo "check mk rc=$? t=$(( $(date +%s) - S ))"; grep -E "PASS|FAIL|passed" $O/check_mk.log
bench() { # name binary cache env batch-sizes...
  local n=$1 bin=$2 kc=$3 mk=$4; shift 4
  TRTFORGE_CACHE_DIR=$kc TRTFORGE_MK=$mk timeout 120 $bin bench --isolate never --precisions fp16 --batch-sizes "$@" --input-lens 512 --output-len 128 --model preset:tinyllama-1.1b --json $O/$n.json > $O/$n.log 2>&1
  echo "$n rc=$?"; grep -E "^\| fp16" $O/$n.log
}
for i in 1 2; do
  bench main_bs1_$i $M/trtforge /tmp/km 0 1
  bench new_bs1_$i $N/trtforge /tmp/kn 0 1
  bench mk_bs1_$i $N/trtforge /tmp/kn 1 1
done
echo "t=$(( $(date +%s) - S ))"
bench main_bs8_64 $M/trtforge /tmp/km 0 8 64
bench new_bs8_64 $N/trtforge /tmp/kn 0 8 64
echo "t=$(( $(date +%s) - S ))"
CT=$(( $(left) - 5 )); [ $CT -gt 120 ] && CT=120
[ $CT -gt 50 ] && { PYTHONUNBUFFERED=1 timeout $CT python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer_fp16.json > $O/torch_peer_fp16.log 2>&1; echo "peer rc=$?"; grep -E "decode|rror" $O/torch_peer_fp16.log | tail -4; }
echo "t=$(( $(date +%s) - S ))"
