#!/usr/bin/env bash
# Prepared in session 33, NOT RUN (no device time left): branch mk-next (1f0007d; also next/mk-next.patch, `git am` onto
# main aa8f28d) — mk_advance writes the greedy loop's token history itself, so the megakernel loop runs two launches a
# step (mk_step, mk_advance) as the probe mk11 did, instead of three (+ hist_put). Hypothesis for part of the 7 µs
# between the engine path (720 µs) and mk11 (713 µs) in call 4. Carry .carry/s34n (branch build + NVRTC caches) and
# .carry/s33f (main 485c869 = aa8f28d's code); if gone, rebuild as session 32's next/run_mk_engine.sh says.
set -uo pipefail
N=.carry/s34n; M=.carry/s33f; O=/tmp/n1; mkdir -p $O; S=$(date +%s)
trap 'tar czf $OUT/n1.tgz -C /tmp n1' EXIT
export LD_LIBRARY_PATH=/usr/local/cuda/lib64; mkdir -p /tmp/kn /tmp/km; cp $N/K/* /tmp/kn/; cp $M/K/* /tmp/km/
sha256sum $N/trtforge $M/trtforge; cat $N/commit.txt $M/commit.txt; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
TRTFORGE_CACHE_DIR=/tmp/kn TRTFORGE_MK=1 TRTFORGE_CHECKS=mk timeout 200 $N/trtforge cuda-check --tinyllama > $O/check_mk.log 2>&1; echo "check rc=$?"; grep -E "PASS|FAIL|passed" $O/check_mk.log
bench() { local n=$1 bin=$2 kc=$3 mk=$4; shift 4
  TRTFORGE_CACHE_DIR=$kc TRTFORGE_MK=$mk timeout 60 $bin bench --isolate never --precisions fp16 --batch-sizes "$@" --input-lens 512 --output-len 128 --model preset:tinyllama-1.1b --json $O/$n.json > $O/$n.log 2>&1
  echo "$n rc=$?"; grep -E "^\| fp16" $O/$n.log; }
for i in 1 2; do bench main_mk_$i $M/trtforge /tmp/km 1 1; bench next_mk_$i $N/trtforge /tmp/kn 1 1; done
bench main_default $M/trtforge /tmp/km 0 1
PYTHONUNBUFFERED=1 timeout 90 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer_fp16.json > $O/torch_peer_fp16.log 2>&1; echo "peer rc=$?"; grep -E "decode|rror" $O/torch_peer_fp16.log | tail -2
echo "t=$(( $(date +%s) - S ))"
