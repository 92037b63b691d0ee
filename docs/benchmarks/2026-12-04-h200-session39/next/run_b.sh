#!/usr/bin/env bash
# Session 39's prepared call B (NOT RUN; ≈ 420 s): the bench matrix, one process per precision and switch, the peer in
# the same lease. SW = TRTFORGE_WQ_SWIGLU=1, ROPE = TRTFORGE_WQ_ROPE=1 with qkv on wq (TRTFORGE_WQ_ROLES=qkv,gateup,down:
# alone, qkv on wq lost 0.3 µs a layer to cuBLASLt in session 38; with the epilogue it also saves rope_append),
# F16Y = TRTFORGE_WQ_F16Y=1 (session 38's f16 qkv / gate/up outputs, opt-in since session 39).
. docs/benchmarks/2026-12-04-h200-session39/next/common.sh
trap "tar czf $OUT/b.tgz -C /tmp r" EXIT
EPI="TRTFORGE_WQ_SWIGLU=1 TRTFORGE_WQ_ROPE=1 TRTFORGE_WQ_ROLES=qkv,gateup,down"
bn i4 int4 32,64 X=1
bn i4_sw int4 32,64 TRTFORGE_WQ_SWIGLU=1
bn i4_epi int4 32,64 $EPI
bn i4_f16y int4 64 TRTFORGE_WQ_F16Y=1
bn i4_roles3 int4 64 TRTFORGE_WQ_ROLES=qkv,gateup,down
bn f8 fp8 48,64 X=1
bn f8_sw fp8 48,64 TRTFORGE_WQ_SWIGLU=1
bn f8_epi fp8 48,64 $EPI
bn i8 int8 48,64 X=1
bn i8_sw int8 48,64 TRTFORGE_WQ_SWIGLU=1
bn i8_epi int8 48,64 $EPI
bn f16 fp16 1,64 X=1
PYTHONUNBUFFERED=1 timeout 80 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 \
  --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $R/torch_peer_fp16.json > $R/torch_peer_fp16.log 2>&1
echo "peer rc=$? $(t)"; grep -E "decode|rror" $R/torch_peer_fp16.log | tail -2
