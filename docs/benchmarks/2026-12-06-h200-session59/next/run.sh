#!/usr/bin/env bash
# Prepared in session 59, not run (device budget; ≈ 560 s): the fused RoPE + KV append (attn_decode_cx8r / cx8rh) in
# serve's paged engine — the TinyLlama-shape paged lists with TRTFORGE_ATTN_ROPE=1 (f16 cache, then int8: "among 63
# others" decodes 64-row steps, i.e. the fused kernel; compared with the one-row run and the CPU) — then #11 / #15's
# whole table beside the peer on main's defaults (`table`). If both paged lists pass, drop the `spec.paged` exclusion
# in CudaBackend::new (TRTFORGE_ATTN_ROPE's default).
# Carry: `KV="int8" KVP="fp8" bash scripts/gpu_carry.sh NAME` at main, then the SmolLM2 bench module and the paged
# TinyLlama modules into it (untar to /tmp/pc, `gunzip -k NAME/trtforge.gz`, with TRTFORGE_CACHE_DIR=/tmp/pc/NAME/K
# TRTFORGE_CUDA_PRECOMPILE=sm_90 LD_LIBRARY_PATH=/tmp/nvrtc/x/nvidia/cu13/lib: `trtforge bench --isolate never --model
# preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128`, and `TRTFORGE_CHECKS=prefill`
# / `TRTFORGE_CHECKS=tlkv8` `trtforge cuda-check --tiny tests/fixtures/tiny_llama --tinyllama --paged` — "... cached"
# errors are the success; remove the unzipped binary, retar). s59a (built at 715ebdf, where the fused path was on in
# paged engines too) is such a carry: with TRTFORGE_ATTN_ROPE=1 set below it runs the same code. `run` with carry
# [".carry/z"].
DL=${DL:-570}
NAME=${NAME:-s59a} . scripts/gpu_bench_lib.sh
for l in prefill tlkv8; do
  [ $(left) -gt 400 ] || break
  TRTFORGE_ATTN_ROPE=1 TRTFORGE_CHECKS=$l timeout 110 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama --paged \
    > $R/paged_tl_$l.log 2>&1
  echo "paged_tl_$l rc=$? $(t)"; grep -E "PASS|FAIL|passed|rror" $R/paged_tl_$l.log | cut -c1-200
done
table
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
