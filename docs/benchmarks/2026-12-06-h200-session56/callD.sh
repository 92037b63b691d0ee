#!/usr/bin/env bash
# Session 56, call D (carry [".carry/z"]: `KV="int8" KVP="fp16 fp8" bash scripts/gpu_carry.sh s56b`, with rmsnorm_bp):
# (1) TRTFORGE_KV_PREFETCH=1 (new, opt-in): the QKV step's RMSNorm of a bs64 decode pass asks L2 to prefetch the
#     layer's K / V rows, so that the decode attention after the QKV GEMM finds them in L2 (a repeated attention launch
#     on L2-warm bytes cost 11.0 µs against 16.4 in session 55). A/B in separate processes, off / on interleaved;
# (2) its correctness: `TRTFORGE_CHECKS=kvpf` (TinyLlama shape, 12-row decode steps on the GEMM path, f16 / int8
#     caches, against the CPU reference) with it on;
# (3) where the bs64 decode attention's warps wait, per SASS instruction (ncu SourceCounters), 8-bit and f16 caches;
# (4) int4 / fp8 rows off / on.
DL=${DL:-420}
NAME=${CARRY:-s56b} . scripts/gpu_bench_lib.sh
bn f16_off fp16 64 X=1
bn f16_pf fp16 64 TRTFORGE_KV_PREFETCH=1
bn k8_off "fp8 --kv-cache int8" 64 X=1
bn k8_pf "fp8 --kv-cache int8" 64 TRTFORGE_KV_PREFETCH=1
ck ck_kvpf 100 TRTFORGE_CHECKS=kvpf TRTFORGE_KV_PREFETCH=1
src() {  # NAME PRECISION-ARGS...: one attn_decode_cx8 launch (the 401st) with SourceCounters, then its SASS source page
  local n=$1; shift
  [ $(left) -gt 60 ] || return 0
  timeout $(( $(left) - 20 )) ncu --clock-control none --cache-control none --kernel-name regex:attn_decode_cx8 \
    --launch-skip 401 --launch-count 1 --section SourceCounters --section WarpStateStats --section InstructionStats \
    --sampling-interval 0 -f -o $R/$n $B bench --isolate never --model preset:tinyllama-1.1b --precisions "$@" \
    --batch-sizes 64 --input-lens 512 --output-len 128 > $R/$n.log 2>&1
  echo "$n rc=$? $(t)"
  ncu -i $R/$n.ncu-rep --page source --csv --print-source sass > $R/$n.sass.csv 2> $R/$n.sass.err; echo "page rc=$?"
  ncu -i $R/$n.ncu-rep --page details --csv > $R/$n.details.csv 2>&1
  wc -l $R/$n.sass.csv
}
src src_k8 fp8 --kv-cache int8
src src_f16 fp16
[ $(left) -gt 45 ] && bn i4_off int4 64 X=1
[ $(left) -gt 45 ] && bn i4_pf int4 64 TRTFORGE_KV_PREFETCH=1
[ $(left) -gt 45 ] && bn fp8_off fp8 64 X=1
[ $(left) -gt 45 ] && bn fp8_pf fp8 64 TRTFORGE_KV_PREFETCH=1
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
