#!/usr/bin/env bash
# Session 54 call F (carry [".carry/f"]: attn_fp16.cubin = the module `TRTFORGE_CUDA_PRECOMPILE=sm_90
# TRTFORGE_CACHE_DIR=/tmp/k1 trtforge bench --isolate never --model preset:tinyllama-1.1b --precisions fp16
# --batch-sizes 64 --input-lens 512 --output-len 128` caches at 0104398, the final kernels): attn_decode_cx8 alone in
# call E's harness, beside its load walk without the math.
R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
timeout 120 python3 docs/benchmarks/2026-12-06-h200-session54/callF/attnprobe.py .carry/f/attn_fp16.cubin $R/attnprobe.json \
  > $R/attnprobe.log 2>&1; echo "attnprobe rc=$?"; cut -c1-160 $R/attnprobe.log
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
