#!/usr/bin/env bash
# Session 59 call B: the fused RoPE + KV append (attn_decode_cx8r / cx8rh) made the default where it runs (TinyLlama
# bs64: decode passes of 34+ rows) — the paged TinyLlama-shape checks with it (64-row decode steps vs one row alone and
# vs the CPU), #11 / #15's table on that default with ROPE-off rows beside two bs64 rows, then the peer.
# Carry: `KV="int8" KVP="fp8" bash scripts/gpu_carry.sh s59a` at the commit that makes it the default, plus the
# SmolLM2 bench module and the paged TinyLlama check modules (README); `run` with carry [".carry/z"].
DL=${DL:-570}
NAME=${NAME:-s59a} . scripts/gpu_bench_lib.sh
timeout 100 $B cuda-check --tiny tests/fixtures/tiny_llama --paged > $R/paged.log 2>&1
echo "paged rc=$? $(t)"; grep -E "FAIL|passed|rror" $R/paged.log | tail -4 | cut -c1-140
# serve's paged engine at the TinyLlama shape, f16 cache: "among 63 others" decodes 64-row steps (the fused kernel)
TRTFORGE_CHECKS=prefill timeout 170 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama --paged > $R/paged_tl.log 2>&1
echo "paged_tl rc=$? $(t)"; grep -E "PASS|FAIL|passed|rror" $R/paged_tl.log | cut -c1-200
b() { [ $(left) -gt 130 ] && bn "$@"; }
b fp16_64 fp16 64 X=1
b fp16_64_off fp16 64 TRTFORGE_ATTN_ROPE=0
b fp8_64 fp8 64 X=1
b fp8_64_off fp8 64 TRTFORGE_ATTN_ROPE=0
b fp8_k8_64 "fp8 --kv-cache int8" 64 X=1
b int4_64 int4 64 X=1
b int8_64 int8 64 X=1
for p in fp16 int4 int8 fp8; do b ${p}_1 $p 1 X=1; done
(TL=("${TL[@]/preset:tinyllama-1.1b/preset:smollm2-135m}"); b smol_1 fp16 1 X=1)
for p in fp16 int4 int8; do b ${p}_8 $p 8 X=1; done
peer torch_peer --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 8 64 --input-lens 512 --output-len 128 \
  --runs 2 --warmup 1 --eager-prefill
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
