#!/usr/bin/env bash
# Session 51, call D (carry [".carry/z"]: s51b.tgz = `bash scripts/gpu_carry.sh s51b` at 072e97b: session 49's wq
# kernel again — the wide variant and the batched sums removed — with x's 64-row tensor map). Priority order;
# DL=SECONDS (default 500).
#  1. `TRTFORGE_CHECKS=wqk`: every format / TinyLlama shape at 64, 40 and 40 zero-filled rows against the host;
#  2. bench bs64 and bs40 (int4, int8, fp8, fp16) and the peer (scripts/torch_baseline.py fp16, bs 40 and 64) in
#     the same lease;
#  3. the `wq` check list with TRTFORGE_WQ=1 (every layer linear on wq: 40- and 12-sequence logits against the CPU),
#     for the time left.
NAME=s51b . scripts/gpu_bench_lib.sh
DL=${DL:-500}
left() { echo $(( DL - ($(date +%s) - T0) )); }
timeout 60 env TRTFORGE_CHECKS=wqk $B cuda-check --tiny tests/fixtures/tiny_llama > $R/wqk.log 2>&1
echo "wqk rc=$? $(t)"; grep -E "  wq |PASS|FAIL|rror|passed" $R/wqk.log | cut -c1-160
for p in int4 int8 fp8 fp16; do
  bn ${p}_64 $p 64 X=1
done
PYTHONUNBUFFERED=1 timeout 120 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 \
  --batch-sizes 40 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill \
  --out $R/torch_peer.json > $R/torch_peer.log 2>&1
echo "peer rc=$? $(t)"; grep -E "decode|rror" $R/torch_peer.log | tail -4
for p in int4 int8 fp8 fp16; do
  [ $(left) -gt 60 ] && bn ${p}_40 $p 40 X=1
done
l=$(left)
if [ $l -gt 30 ]; then
  timeout $l env TRTFORGE_WQ=1 TRTFORGE_CHECKS=wq $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama \
    > $R/check_wq.log 2>&1; echo "check wq (${l} s) rc=$? $(t)"
  grep -E "PASS|FAIL|passed|rror" $R/check_wq.log | cut -c1-200
fi
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
