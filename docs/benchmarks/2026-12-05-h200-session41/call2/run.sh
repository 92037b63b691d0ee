#!/usr/bin/env bash
# Session 39's prepared call B (NOT RUN; ≈ 470 s): the bench matrix, one process per precision and switch, the peer in
# the same lease. Switches as in run_a.sh; qkv (and o) go on wq only with the epilogues that pay for them (alone, qkv
# lost 0.3 µs and o 0.9 µs a layer to cuBLASLt in session 38's ncu); F16Y = TRTFORGE_WQ_F16Y=1 (session 38's f16
# qkv / gate/up outputs, opt-in since session 39).
. docs/benchmarks/2026-12-04-h200-session39/next/common.sh
trap "tar czf $OUT/b.tgz -C /tmp r" EXIT
EPI="TRTFORGE_WQ_SWIGLU=1 TRTFORGE_WQ_ROPE=1 TRTFORGE_WQ_ROLES=qkv,gateup,down"
ALL="TRTFORGE_WQ_SWIGLU=1 TRTFORGE_WQ_ROPE=1 TRTFORGE_WQ_NORM=1 TRTFORGE_WQ_ROLES=qkv,o,gateup,down"
for p in int4:i4:32,64 fp8:f8:48,64 int8:i8:48,64; do
  IFS=: read -r prec n bs <<< "$p"
  bn $n $prec $bs X=1
  bn ${n}_sw $prec $bs TRTFORGE_WQ_SWIGLU=1
  bn ${n}_epi $prec $bs $EPI
  bn ${n}_all $prec $bs $ALL
done
bn i4_f16y int4 64 TRTFORGE_WQ_F16Y=1
bn f16 fp16 1,64 X=1
PYTHONUNBUFFERED=1 timeout 80 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 \
  --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $R/torch_peer_fp16.json > $R/torch_peer_fp16.log 2>&1
echo "peer rc=$? $(t)"; grep -E "decode|rror" $R/torch_peer_fp16.log | tail -2
