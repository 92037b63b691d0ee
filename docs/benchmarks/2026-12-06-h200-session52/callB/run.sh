#!/usr/bin/env bash
# Session 52, call B (carry [".carry/z"]: s52.tgz = `LINEINFO=1 bash scripts/gpu_carry.sh s52` at df01475): the batched
# cluster sums of the K-split wq launches (default) against session 37's (`TRTFORGE_WQ_EPI=sync`), per launch in the
# self-test and inside the bs64 / bs40 step, then the other precisions beside the peer.
NAME=s52 . scripts/gpu_bench_lib.sh
DL=${DL:-500}
left() { echo $(( DL - ($(date +%s) - T0) )); }
timeout 120 env TRTFORGE_CHECKS=wqk $B cuda-check --tiny tests/fixtures/tiny_llama > $R/wqk.log 2>&1
echo "wqk rc=$? $(t)"; grep -E "  wq |PASS|FAIL|rror|passed" $R/wqk.log | cut -c1-120
bn i4_64 int4 64 X=1
bn i4_64_sync int4 64 TRTFORGE_WQ_EPI=sync
bn i4_64_all int4 64 TRTFORGE_WQ=1
bn i4_64_all_sync int4 64 TRTFORGE_WQ=1 TRTFORGE_WQ_EPI=sync
bn f16_64 fp16 64 X=1
bn i8_64 int8 64 X=1
bn f8_64 fp8 64 X=1
if [ $(left) -gt 130 ]; then
  PYTHONUNBUFFERED=1 timeout 110 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 \
    --batch-sizes 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill \
    --out $R/torch_peer.json > $R/torch_peer.log 2>&1
  echo "peer rc=$? $(t)"; grep -E "decode|rror" $R/torch_peer.log | tail -2
fi
[ $(left) -gt 40 ] && bn i4_40 int4 40 X=1
[ $(left) -gt 40 ] && bn i4_40_sync int4 40 TRTFORGE_WQ_EPI=sync
[ $(left) -gt 40 ] && bn i4_64_b int4 64 X=1
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
