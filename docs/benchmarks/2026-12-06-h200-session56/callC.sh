#!/usr/bin/env bash
# Session 56, call C (carry [".carry/z"]: `KV="int8 fp8" KVP="fp16 fp8 int4" bash scripts/gpu_carry.sh s56`): where the
# bs64 decode attention's warps wait, per SASS instruction (ncu SourceCounters: PC-sampled stall reasons and executed
# instruction counts), for the 8-bit (fp8 weights + int8 KV) and the f16 cache, one launch each inside the bs64 bench;
# then the 8-bit attention repeated (TRTFORGE_ATTN_REPS=2: a launch on L2-warm bytes) and the fp8 cache's REPS=0 row.
DL=${DL:-230}
NAME=${CARRY:-s56} . scripts/gpu_bench_lib.sh
src() {  # NAME PRECISION-ARGS...: one attn_decode_cx8 launch (the 401st) with SourceCounters, then its SASS source page
  local n=$1; shift
  [ $(left) -gt 40 ] || return 0
  timeout $(( $(left) - 20 )) ncu --clock-control none --cache-control none --kernel-name regex:attn_decode_cx8 \
    --launch-skip 401 --launch-count 1 --section SourceCounters --section WarpStateStats --section InstructionStats \
    --sampling-interval 0 -f -o $R/$n $B bench --isolate never --model preset:tinyllama-1.1b --precisions "$@" \
    --batch-sizes 64 --input-lens 512 --output-len 128 > $R/$n.log 2>&1
  echo "$n rc=$? $(t)"
  ncu -i $R/$n.ncu-rep --page source --csv --print-source sass > $R/$n.sass.csv 2> $R/$n.sass.err; echo "page rc=$?"
  ncu -i $R/$n.ncu-rep --page details --csv > $R/$n.details.csv 2>&1
  head -c 600 $R/$n.sass.csv; echo; wc -l $R/$n.sass.csv
}
src src_k8 fp8 --kv-cache int8
src src_f16 fp16
[ $(left) -gt 45 ] && bn fp8_k8_r2 "fp8 --kv-cache int8" 64 TRTFORGE_ATTN_REPS=2
[ $(left) -gt 45 ] && bn fp8_kf8_r0 "fp8 --kv-cache fp8" 64 TRTFORGE_ATTN_REPS=0
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
