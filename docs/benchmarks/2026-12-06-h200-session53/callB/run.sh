#!/usr/bin/env bash
# Session 53 call B (carry [".carry/z"] = s52r): the cuBLASLt choice for the GEMM-path linears (qkv / o of the
# quantized engines, all four of fp16) judged inside the step, A/B interleaved in one lease. The load-time tuner times
# each shape alone with L2 flushed and may pick a split-K variant (a second, reduction kernel a GEMM);
# TRTFORGE_GEMM_SPLITK=0 keeps only the heuristic's candidates, TRTFORGE_GEMM_TUNE_MS=0 its first choice untimed,
# TRTFORGE_GEMM=cublas cublasGemmEx. TRTFORGE_GEMM_LOG=1 prints each shape's tuning line (what was picked).
DL=${DL:-500}
NAME=s52r . scripts/gpu_bench_lib.sh
bn i4_a int4 64 TRTFORGE_GEMM_LOG=1
grep -E "gemm-lt 64x" $R/i4_a.log | cut -c1-260
bn i4_nosk int4 64 TRTFORGE_GEMM_SPLITK=0 TRTFORGE_GEMM_LOG=1
grep -E "gemm-lt 64x" $R/i4_nosk.log | cut -c1-200
bn i4_heur int4 64 TRTFORGE_GEMM_TUNE_MS=0
bn f16_a fp16 64 TRTFORGE_GEMM_LOG=1
grep -E "gemm-lt 64x" $R/f16_a.log | cut -c1-260
bn f16_nosk fp16 64 TRTFORGE_GEMM_SPLITK=0 TRTFORGE_GEMM_LOG=1
grep -E "gemm-lt 64x" $R/f16_nosk.log | cut -c1-200
bn i4_b int4 64 X=1
bn f16_heur fp16 64 TRTFORGE_GEMM_TUNE_MS=0
bn i4_cublas int4 64 TRTFORGE_GEMM=cublas
bn f16_cublas fp16 64 TRTFORGE_GEMM=cublas
bn f16_b fp16 64 X=1
[ $(left) -gt 40 ] && bn i8_a int8 64 X=1
[ $(left) -gt 40 ] && bn i8_nosk int8 64 TRTFORGE_GEMM_SPLITK=0
[ $(left) -gt 40 ] && bn i4_c int4 64 X=1
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
