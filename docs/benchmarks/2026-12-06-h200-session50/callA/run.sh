#!/usr/bin/env bash
# Session 50 call A (carry [".carry/z"]: s50.tgz = `WIDE=1 LINEINFO=1 bash scripts/gpu_carry.sh s50` at de246fa — the
# modules with the wide quantized decode GEMM `wqs_*`, TRTFORGE_WQ_WIDE). Priority order, DL=SECONDS (default 540)
# ends it sooner; everything written under $R comes back even when the call is cut.
#  1. `TRTFORGE_CHECKS=wqk`: the GEMM alone on synthetic codes, every format at the TinyLlama shapes, the default
#     kernel (nt 1) and the wide one (nt 2 / 4), 64 and 40 rows, against a host reference; each launch's µs;
#  2. int4 bs64 decode: default, then gate/up wide (4 and 2 tiles a block), gate/up 4 + down 2; fp16 bs64 and the peer
#     (scripts/torch_baseline.py, fp16 bs64) in the same lease;
#  3. int8 / fp8 bs64 default and gate/up 4 + down 2; int4 bs32 both; the default int4 again (drift).
NAME=s50 . scripts/gpu_bench_lib.sh
DL=${DL:-540}
left() { echo $(( DL - ($(date +%s) - T0) )); }
timeout 150 env TRTFORGE_WQ_WIDE=2 TRTFORGE_CHECKS=wqk $B cuda-check --tiny tests/fixtures/tiny_llama > $R/wqk.log 2>&1
echo "wqk rc=$? $(t)"; grep -E "  wq |PASS|FAIL|rror|passed" $R/wqk.log | cut -c1-160
bn i4 int4 64 X=1
bn i4_g4 int4 64 TRTFORGE_WQ_WIDE=gateup:4
bn i4_g2 int4 64 TRTFORGE_WQ_WIDE=gateup:2
bn i4_g4d2 int4 64 TRTFORGE_WQ_WIDE=gateup:4,down:2
bn f16 fp16 64 X=1
if [ $(left) -gt 120 ]; then
  PYTHONUNBUFFERED=1 timeout 100 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 \
    --batch-sizes 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill \
    --out $R/torch_peer.json > $R/torch_peer.log 2>&1
  echo "peer rc=$? $(t)"; grep -E "decode|rror" $R/torch_peer.log | tail -4
fi
for row in "i8 int8 64 X=1" "i8_g4d2 int8 64 TRTFORGE_WQ_WIDE=gateup:4,down:2" "f8 fp8 64 X=1" \
  "f8_g4d2 fp8 64 TRTFORGE_WQ_WIDE=gateup:4,down:2" "i4_32 int4 32 X=1" "i4_32_g4d2 int4 32 TRTFORGE_WQ_WIDE=gateup:4,down:2" \
  "i4b int4 64 X=1" "i4_all2 int4 64 TRTFORGE_WQ_WIDE=2"; do
  [ $(left) -gt 45 ] || break
  bn $row
done
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
