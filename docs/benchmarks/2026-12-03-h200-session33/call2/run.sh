#!/usr/bin/env bash
# Session 33, call 2: branch mk-engine + mk_advance (one launch after mk_step in place of argmax + advance + mk_epoch)
# + cuda-check TRTFORGE_CHECKS=mk (the megakernel's logits / greedy loop vs the CPU reference). Carry .carry/s33.
set -uo pipefail
C=.carry/s33; O=$OUT; S=$(date +%s); left() { echo $(( 570 - ($(date +%s) - S) )); }
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/K/* /tmp/kc/
sha256sum $C/trtforge; cat $C/commit.txt; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
TRTFORGE_MK=1 TRTFORGE_CHECKS=mk timeout 300 $C/trtforge cuda-check --tinyllama > $O/check_mk.log 2>&1; echo "check mk rc=$? t=$(( $(date +%s) - S ))"; grep -E "PASS|FAIL|passed" $O/check_mk.log
B="$C/trtforge bench --isolate never --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --model preset:tinyllama-1.1b"
for i in 1 2; do
  timeout 90 $B --json $O/default$i.json > $O/default$i.log 2>&1; echo "default$i rc=$?"; grep -E "^\| fp16" $O/default$i.log
  TRTFORGE_MK=1 timeout 90 $B --json $O/mk$i.json > $O/mk$i.log 2>&1; echo "mk$i rc=$?"; grep -E "^\| fp16" $O/mk$i.log
done
echo "t=$(( $(date +%s) - S ))"
CT=$(( $(left) - 10 )); [ $CT -gt 200 ] && CT=200
[ $CT -gt 60 ] && { PYTHONUNBUFFERED=1 timeout $CT python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer_fp16.json > $O/torch_peer_fp16.log 2>&1; echo "peer rc=$?"; grep -E "decode|rror" $O/torch_peer_fp16.log | tail -4; }
CT=$(( $(left) - 5 ))
[ $CT -gt 60 ] && { TRTFORGE_CHECKS=mk timeout $CT $C/trtforge cuda-check --tinyllama > $O/check_default.log 2>&1; echo "check default rc=$?"; grep -E "PASS|FAIL|passed" $O/check_default.log; }
echo "t=$(( $(date +%s) - S ))"
