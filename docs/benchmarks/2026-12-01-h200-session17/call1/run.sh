#!/usr/bin/env bash
# Session 17 call 1 (second of the session): kv_rot with one block per (row, kv head) and a warp per head
# (k + its q heads side by side; call 0 = session 16's next_call.sh had one warp doing all nine in turn:
# +0.12 ms a token at bs1), and greedy checks that accept a diverging 8-bit-KV sequence only at a near tie of
# the reference. kvrot checks plain + smoothed, then 4k bs64 fp16 / fp8 / fp8_rotate KV and 512 bs1 fp8 / fp8_rotate.
set -uo pipefail
C=${C:-.carry/s17a}; B=$C/trtforge; O=/tmp/s17a; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s17a.tgz -C /tmp s17a; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
TRTFORGE_CHECKS=kvrot timeout 150 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_kvrot.log 2>&1; echo "kvrot rc=$?"; grep -E "PASS|FAIL|passed" $O/check_kvrot.log | cut -c1-230; t
TRTFORGE_CHECK_SMOOTH=1 TRTFORGE_CHECKS=kvrot timeout 150 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_kvrot_smooth.log 2>&1; echo "kvrot smooth rc=$?"; grep -E "PASS|FAIL|passed" $O/check_kvrot_smooth.log | cut -c1-230; t
for kv in fp16 fp8 fp8_rotate; do
  timeout 100 $B bench --model preset:tinyllama-1.1b --precisions fp16 --kv-cache $kv --max-model-len 4096 --batch-sizes 64 --input-lens 4032 --output-len 64 --runs 1 --json $O/k4_$kv.json > $O/k4_$kv.log 2>&1; echo "4k $kv rc=$?"; grep -E "^\| fp|rror" $O/k4_$kv.log; t
done
for kv in fp8 fp8_rotate; do
  timeout 60 $B bench --model preset:tinyllama-1.1b --precisions fp16 --kv-cache $kv --batch-sizes 1 --input-lens 512 --output-len 128 --json $O/b1_$kv.json > $O/b1_$kv.log 2>&1; echo "bs1 $kv rc=$?"; grep -E "^\| fp|rror" $O/b1_$kv.log; t
done
