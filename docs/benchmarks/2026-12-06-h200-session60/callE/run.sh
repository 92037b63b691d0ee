#!/usr/bin/env bash
# Session 60 call E: #15's long-context row on main's defaults (the fused RoPE + KV append where it runs): bs64 at a
# 4k context (prompt 3,968 + 128 new, --max-model-len 4096), fp16 weights with an fp16 / fp8 / int8 cache, fp8 weights
# with an fp8 cache, the fp16-cache row again at the end. Carry [".carry/z"]: s60b = s59a (binary 715ebdf, whose
# defaults are main's) + these rows' modules (`TRTFORGE_CUDA_PRECOMPILE=sm_90 trtforge bench ...` of each row below).
DL=${DL:-240}
NAME=${NAME:-s60b} . scripts/gpu_bench_lib.sh
k4() { # name precision kv
  local n=$1 p=$2 kv=$3
  [ $(left) -gt 45 ] || { echo "$n skipped (time)"; return; }
  timeout 80 $B bench --isolate never --model preset:tinyllama-1.1b --precisions $p --kv-cache $kv --batch-sizes 64 \
    --input-lens 3968 --output-len 128 --max-model-len 4096 --json $R/$n.json > $R/$n.log 2>&1
  echo "$n rc=$? $(t)"; grep -E '^\| (fp|int)|rror|compil' $R/$n.log | cut -c1-160
}
k4 f16kv_4k fp16 fp16; k4 fp8kv_4k fp16 fp8; k4 int8kv_4k fp16 int8; k4 f8w_fp8kv_4k fp8 fp8; k4 f16kv_4k_b fp16 fp16
tar czf $OUT/r.tgz -C $OUT r; t
