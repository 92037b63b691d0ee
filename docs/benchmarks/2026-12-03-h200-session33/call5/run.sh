#!/usr/bin/env bash
# Session 33, call 5: main after the merge (.carry/s33f, commit in commit.txt): the megakernel checks, bench fp16 bs1
# default / TRTFORGE_MK=1 alternated (+ MK with TRTFORGE_PDL=0), bs8, and the peer, in one lease.
set -uo pipefail
N=.carry/s33f; O=/tmp/c5; mkdir -p $O; S=$(date +%s); left() { echo $(( 380 - ($(date +%s) - S) )); }
trap 'tar czf $OUT/c5.tgz -C /tmp c5' EXIT
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kn; mkdir -p /tmp/kn; cp $N/K/* /tmp/kn/
sha256sum $N/trtforge; cat $N/commit.txt; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
TRTFORGE_MK=1 TRTFORGE_CHECKS=mk timeout 200 $N/trtforge cuda-check --tinyllama > $O/check_mk.log 2>&1; echo "check mk rc=$? t=$(( $(date +%s) - S ))"; grep -E "PASS|FAIL|passed" $O/check_mk.log
bench() { # name env batch-sizes...
  local n=$1 e=$2; shift 2
  [ $(left) -gt 60 ] || { echo "$n skipped (time)"; return; }
  env $e timeout 60 $N/trtforge bench --isolate never --precisions fp16 --batch-sizes "$@" --input-lens 512 --output-len 128 --model preset:tinyllama-1.1b --json $O/$n.json > $O/$n.log 2>&1
  echo "$n rc=$?"; grep -E "^\| fp16" $O/$n.log
}
for i in 1 2; do bench default_bs1_$i X=0 1; bench mk_bs1_$i TRTFORGE_MK=1 1; done
bench mk_nopdl_bs1 "TRTFORGE_MK=1 TRTFORGE_PDL=0" 1
echo "t=$(( $(date +%s) - S ))"
CT=$(( $(left) - 5 )); [ $CT -gt 90 ] && CT=90
[ $CT -gt 40 ] && { PYTHONUNBUFFERED=1 timeout $CT python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer_fp16.json > $O/torch_peer_fp16.log 2>&1; echo "peer rc=$?"; grep -E "decode|rror" $O/torch_peer_fp16.log | tail -4; }
bench default_bs8 X=0 8
echo "t=$(( $(date +%s) - S ))"
