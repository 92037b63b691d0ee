#!/usr/bin/env bash
# Prepared in session 50 for the next lease (carry [".carry/z"]: s50c.tgz = `WIDE=1 LINEINFO=1 bash
# scripts/gpu_carry.sh s50c` at a0c4ed4 — the wide wq variant, the batched cluster sums (TRTFORGE_WQ_RED=1), and the
# review's shared producer / epilogue of wq and wqs, which no GPU has run yet: step 1's self-test checks it first).
# Priority order; DL=SECONDS (default 560) ends it sooner; what is under $R comes back even when the call is cut.
#  1. `TRTFORGE_CHECKS=wqk` with the wide kernels: per-launch µs of every K-split shape with the cluster sums one
#     rank after another and batched, and the wide kernels whole-K (main loop without the cluster epilogue);
#  2. int4 bs64: default, TRTFORGE_WQ_RED=1, and both with every layer linear on wq (TRTFORGE_WQ=1: qkv / o split K
#     four ways); fp16 bs64 and the peer (scripts/torch_baseline.py) in the same lease;
#  3. ncu --set full of one wqs_i4_4_3 launch (gate/up, 4 tiles a block) — where a stage's ≈ 5 µs go;
#  4. the `wq` check list (every layer linear on wq, K-split clusters included) with TRTFORGE_WQ_RED=1, for the
#     time left (a whole list needs ≈ 200–300 s of CPU references).
NAME=s50c . scripts/gpu_bench_lib.sh
DL=${DL:-560}
left() { echo $(( DL - ($(date +%s) - T0) )); }
timeout 150 env TRTFORGE_WQ_WIDE=2 TRTFORGE_CHECKS=wqk $B cuda-check --tiny tests/fixtures/tiny_llama > $R/wqk.log 2>&1
echo "wqk rc=$? $(t)"; grep -E "  wq |PASS|FAIL|rror|passed" $R/wqk.log | cut -c1-160
bn i4 int4 64 X=1
bn i4_red int4 64 TRTFORGE_WQ_RED=1
bn i4_all int4 64 TRTFORGE_WQ=1
bn i4_all_red int4 64 TRTFORGE_WQ=1 TRTFORGE_WQ_RED=1
bn f16 fp16 64 X=1
if [ $(left) -gt 120 ]; then
  PYTHONUNBUFFERED=1 timeout 100 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 \
    --batch-sizes 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill \
    --out $R/torch_peer.json > $R/torch_peer.log 2>&1
  echo "peer rc=$? $(t)"; grep -E "decode|rror" $R/torch_peer.log | tail -4
fi
if [ $(left) -gt 90 ]; then
  timeout 80 env TRTFORGE_WQ_WIDE=gateup:4 ncu --set full --kernel-name regex:wqs_i4 --launch-count 1 -o $R/wqs_gateup \
    $B bench --isolate never --model preset:tinyllama-1.1b --precisions int4 --batch-sizes 64 --input-lens 64 \
    --output-len 2 --runs 1 --warmup 0 > $R/ncu_wqs.log 2>&1
  echo "ncu wqs rc=$? $(t)"; tail -3 $R/ncu_wqs.log | cut -c1-160
fi
l=$(left)
if [ $l -gt 30 ]; then
  timeout $l env TRTFORGE_WQ=1 TRTFORGE_WQ_RED=1 TRTFORGE_CHECKS=wq $B cuda-check --tiny tests/fixtures/tiny_llama \
    --tinyllama > $R/check_wq_red.log 2>&1; echo "check wq red (${l} s) rc=$? $(t)"
  grep -E "PASS|FAIL|passed|rror" $R/check_wq_red.log | cut -c1-200
fi
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
