#!/usr/bin/env bash
# Prepared in session 52 for the next lease (carry [".carry/z"]: s52r.tgz = `LINEINFO=1 bash scripts/gpu_carry.sh s52r`
# at the commit that added TRTFORGE_WQ_ROT, or later with the same src/). Priority order; DL=SECONDS (default 480) ends it
# sooner; what is under $R comes back even when the call is cut.
#  1. `TRTFORGE_CHECKS=wqk`: the rotated chunk order (rows marked "rot") checked against the host sums and timed;
#  2. in the step, A/B interleaved in one lease (session 52: per-launch self-test times do not predict the step):
#     int4 / int8 / fp8 bs64 and int4 bs40, default and TRTFORGE_WQ_ROT=1;
#  3. gate/up split three ways with two slots (`gateup:3x2`: 528 blocks = 4 an SM on 132 SMs, every one resident at
#     once — the default's 176 tiles leave 44 SMs with two) and two ways (`gateup:2x2`), with and without the rotation.
DL=${DL:-480}
NAME=s52r . scripts/gpu_bench_lib.sh
wqk " rot:"
bn i4_a int4 64 X=1
bn i4_rot int4 64 TRTFORGE_WQ_ROT=1
bn i4_b int4 64 X=1
bn i4_rot2 int4 64 TRTFORGE_WQ_ROT=1
bn i8_a int8 64 X=1
bn i8_rot int8 64 TRTFORGE_WQ_ROT=1
bn f8_a fp8 64 X=1
bn f8_rot fp8 64 TRTFORGE_WQ_ROT=1
bn i4_40_a int4 40 X=1
bn i4_40_rot int4 40 TRTFORGE_WQ_ROT=1
for s in 3x2 2x2; do
  [ $(left) -gt 40 ] && bn i4_gu$s int4 64 TRTFORGE_WQ_SHAPE=gateup:$s
  [ $(left) -gt 40 ] && bn i4_gu${s}_rot int4 64 TRTFORGE_WQ_SHAPE=gateup:$s TRTFORGE_WQ_ROT=1
done
[ $(left) -gt 40 ] && bn i4_c int4 64 X=1
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
