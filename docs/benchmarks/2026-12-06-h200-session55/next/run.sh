#!/usr/bin/env bash
# Prepared in session 55 for the next lease, NOT RUN (no machine could be started after call A). Carry [".carry/z"]:
#   KV="int8 fp8" KVP="fp16 fp8 int4" bash scripts/gpu_carry.sh s56     (the 8-bit-KV bench modules precompiled too;
#   ≈ 10 min here; another carry name: CARRY=NAME bash .../next/run.sh)
# Call A: one f16-cache decode attention costs 16.4 µs a layer inside the fp16 bs64 step (TRTFORGE_ATTN_REPS 0 / 1),
# 23 % of the step. An 8-bit cache halves its bytes: what does the 8-bit attention (attn_decode_cx8's KV_Q path) cost
# in the step, and what is #15's fp8 bs64 row with it (1.3× fp16 needs a step ≈ 7.4 µs a layer shorter than fp8's
# 1.403 ms)? Rows with TRTFORGE_ATTN_REPS=1 / 0, then ncu of the 8-bit launches (duration, DRAM bytes; the sections of
# one launch if time is left). ≈ 200 s.
DL=${DL:-220}
NAME=${CARRY:-s56} . scripts/gpu_bench_lib.sh
bn f16 fp16 64 X=1
bn fp8 fp8 64 X=1
bn fp8_k8_r1 "fp8 --kv-cache int8" 64 TRTFORGE_ATTN_REPS=1
bn fp8_k8_r0 "fp8 --kv-cache int8" 64 TRTFORGE_ATTN_REPS=0
bn fp8_kf8_r1 "fp8 --kv-cache fp8" 64 TRTFORGE_ATTN_REPS=1
bn f16_k8_r1 "fp16 --kv-cache int8" 64 TRTFORGE_ATTN_REPS=1
bn f16_k8_r0 "fp16 --kv-cache int8" 64 TRTFORGE_ATTN_REPS=0
bn i4_k8 "int4 --kv-cache int8" 64 X=1
M="--metrics gpu__time_duration.sum,dram__bytes_read.sum,lts__t_sector_hit_rate.pct"
ncb ncu_k8 "attn_decode|kv_rot" 400 4 "$M" fp8 --kv-cache int8
S="--section SpeedOfLight --section WarpStateStats --section SchedulerStats --section Occupancy --section LaunchStats"
ncb ncu_k8_sec "attn_decode|kv_rot" 401 1 "$S" fp8 --kv-cache int8
ncb ncu_f16_sec "attn_decode|kv_rot" 401 1 "$S" fp16
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
