#!/usr/bin/env bash
# Session 47 call 3 (carry [".carry/z"], s47c.tgz = `bash scripts/gpu_carry.sh s47c` at the commit that adds
# TRTFORGE_WQ_WG): two consumer warpgroups a wq block taking alternate stages (`…w2` kernels).
#  1. the `wq` check list with TRTFORGE_WQ_WG=2 (every layer linear on wq: K-split clusters too), in the background;
#  2. bench A/B, one process each, alternating: one warpgroup (default) vs TRTFORGE_WQ_WG=2, int4 / int8 / fp8 bs64
#     (int4 also bs32), then WG=2 with 5-slot rings, and fp16;
#  3. the peer (scripts/torch_baseline.py fp16 bs64) in the same lease.
NAME=s47c . scripts/gpu_bench_lib.sh
( timeout 330 env TRTFORGE_WQ=1 TRTFORGE_WQ_WG=2 TRTFORGE_CHECKS=wq $B cuda-check --tiny tests/fixtures/tiny_llama \
  --tinyllama > $R/check_wq_wg2.log 2>&1; echo "check wq rc=$?" >> $R/check_wq_wg2.log ) &
W=TRTFORGE_WQ_WG=2
bn i4_w1 int4 32,64 X=1
bn i4_w2 int4 32,64 $W
bn i8_w1 int8 64 X=1
bn i8_w2 int8 64 $W
bn f8_w1 fp8 64 X=1
bn f8_w2 fp8 64 $W
bn i4_w2_s5 int4 64 $W TRTFORGE_WQ_SHAPE=gateup:1x5,down:4x5
bn i4_w2_s3 int4 64 $W TRTFORGE_WQ_SHAPE=gateup:1x3,down:4x3
bn f16 fp16 64 X=1
bn i4_w1b int4 64 X=1
bn i4_w2b int4 64 $W
wait; echo "checks done $(t)"; grep -E "PASS|FAIL|passed|rror|rc=" $R/check_wq_wg2.log | cut -c1-200
PYTHONUNBUFFERED=1 timeout 150 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 \
  --batch-sizes 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill \
  --out $R/torch_peer.json > $R/torch_peer.log 2>&1
echo "peer rc=$? $(t)"; grep -E "decode|rror" $R/torch_peer.log | tail -4
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
