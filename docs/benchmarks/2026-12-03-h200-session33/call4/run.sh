#!/usr/bin/env bash
# Session 33, call 4: the engine's megakernel path (.carry/s33, TRTFORGE_MK=1) beside session 32's engine-shaped probe mk11
# in one lease (the integration gap), and bs8 main (.carry/s30a) vs the branch (greedy-loop graphs) alternated.
set -uo pipefail
D=docs/benchmarks/2026-12-03-h200-session32; N=.carry/s33; M=.carry/s30a; O=/tmp/c4; mkdir -p $O; S=$(date +%s)
trap 'tar czf $OUT/c4.tgz -C /tmp c4' EXIT
export PATH=/usr/local/cuda/bin:$PATH LD_LIBRARY_PATH=/usr/local/cuda/lib64; mkdir -p /tmp/kn /tmp/km; cp $N/K/* /tmp/kn/; cp $M/K/* /tmp/km/
sha256sum $N/trtforge $M/trtforge $D/mk11/mk11.cu; cat $N/commit.txt; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
( nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 $D/mk11/mk11.cu -o /tmp/mk11 > $O/build_mk11.log 2>&1 || echo "build mk11 FAILED" ) &
bench() { # name binary cache mk batch-sizes...
  local n=$1 bin=$2 kc=$3 mk=$4; shift 4
  TRTFORGE_CACHE_DIR=$kc TRTFORGE_MK=$mk timeout 120 $bin bench --isolate never --precisions fp16 --batch-sizes "$@" --input-lens 512 --output-len 128 --model preset:tinyllama-1.1b --json $O/$n.json > $O/$n.log 2>&1
  echo "$n rc=$?"; grep -E "^\| fp16" $O/$n.log
}
for i in 1 2; do
  bench main_bs8_$i $M/trtforge /tmp/km 0 8
  bench new_bs8_$i $N/trtforge /tmp/kn 0 8
done
wait; echo "t=$(( $(date +%s) - S ))"
s() { grep -E 'bitwise|greedy|median' $1 | sed -E 's/max \|mk.*rel/rel/; s/; argmax.*//; s/weights.*//; s/ \(first.*//' | tr '\n' ' '; }
for i in 1 2; do
  MK_DET=3 timeout 120 /tmp/mk11 > $O/mk11_$i.log 2>&1; echo "mk11_$i rc=$? $(s $O/mk11_$i.log)"
  bench mk_bs1_$i $N/trtforge /tmp/kn 1 1
done
bench main_bs1 $M/trtforge /tmp/km 0 1
echo "t=$(( $(date +%s) - S ))"
