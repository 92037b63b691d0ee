#!/usr/bin/env bash
# Session 49 call 2 (carry [".carry/z"]: s49b.tgz = `LINEINFO=1 bash scripts/gpu_carry.sh s49b` at f31e174's
# sources — the one-warpgroup wq kernel as on main; a later main builds it too under that name: the script uses no
# variant that session 49 removed). Call 1: more consumer warpgroups do not help (two
# −2 %, four −15 %): is a gate/up launch bounded by its uneven waves? 176 tiles on 132 SMs, two blocks an SM
# allowed — ncu of session 47 showed SM active cycles at 67 % of the elapsed on average.
#  0. probe/mmaprobe.py: wq's convert → 8 MMAs → wait chain alone, without copies (N 64 / 128 / 256, RS / SS, 1–4
#     warpgroups, 1–2 blocks an SM) against the SM's f16 peak — is the chain's MMA issue the bound?
#  1. ncu, a few metrics only (no replay of sections): per-SM active cycles (min / avg / max) and the duration of
#     layer 0's int4 gate/up and down launches (default), then the same with gate/up on a 6-slot ring (one block an
#     SM: two full waves, session 47: −7.3 % a step);
#  2. the peer (scripts/torch_baseline.py, fp16 bs64) in the same lease, then fp16 / int4 bs64 of trtforge;
#  3. the ncu of 1. with one block an SM, if time is left. NCU_ONLY=1: 0., 1. and 3. only (≈ 140 s).
# Session 50: run as NCU_ONLY=1 by default (≈ 140 s of device time: the probe and the ncu rows); the peer and the
# benches moved into session 50's call of the wide variant (docs/benchmarks/2026-12-06-h200-session50).
NCU_ONLY=${NCU_ONLY:-1}
NAME=s49b . scripts/gpu_bench_lib.sh
timeout 90 python3 docs/benchmarks/2026-12-05-h200-session49/probe/mmaprobe.py $R/mmaprobe.json > $R/mmaprobe.log 2>&1
echo "mmaprobe rc=$? $(t)"; cut -c1-200 $R/mmaprobe.log | tail -20
M=gpu__time_duration.sum,sm__cycles_active.min,sm__cycles_active.avg,sm__cycles_active.max,sm__cycles_elapsed.max,smsp__inst_executed.sum
nc() {  # nc NAME [ENV=VALUE ...]
  local n=$1; shift
  timeout 60 env "$@" ncu --kernel-name regex:wq_i4 --launch-count 2 --metrics $M --csv $B bench \
    --isolate never --model preset:tinyllama-1.1b --precisions int4 --batch-sizes 64 --input-lens 64 --output-len 2 \
    --runs 1 --warmup 0 > $R/ncu_$n.csv 2> $R/ncu_$n.err
  echo "ncu $n rc=$? $(t)"; grep -E '"wq_' $R/ncu_$n.csv | awk -F'","' '{print $5, $(NF-2), $NF}' | cut -c1-120
}
nc default X=1
if [ "${NCU_ONLY:-0}" = 1 ]; then nc g1x6 TRTFORGE_WQ_SHAPE=gateup:1x6; tar czf $OUT/r.tgz -C $OUT r && rm -rf $R; t; exit 0; fi
PYTHONUNBUFFERED=1 timeout 100 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 \
  --batch-sizes 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill \
  --out $R/torch_peer.json > $R/torch_peer.log 2>&1
echo "peer rc=$? $(t)"; grep -E "decode|rror" $R/torch_peer.log | tail -4
bn f16 fp16 64 X=1
bn i4 int4 64 X=1
nc g1x6 TRTFORGE_WQ_SHAPE=gateup:1x6
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
