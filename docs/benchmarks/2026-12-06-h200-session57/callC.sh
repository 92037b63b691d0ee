#!/usr/bin/env bash
# Session 57 call C (carry [".carry/z"]: s57c = `KV="int8" KVP="fp16 fp8" bash scripts/gpu_carry.sh s57c` at the
# ACX_PRE commit, its K also holding the fp16 and fp8 + int8 KV bench modules built with TRTFORGE_ACX_PRE=8 (the code
# before) and =0, and the tiny fixture's attn / prefill check lists with TRTFORGE_ATTN=cx8all).
# The bs64 decode attention filling 1 ring slot before griddepcontrol.wait (new default), every slot (8: before), or
# none (0): fp16 and fp8 + int8 KV bs64, interleaved, one process a row; its checks with the kernel forced at every
# batch; the tiny fixture's paged checks.
DL=${DL:-330}
NAME=s57c . scripts/gpu_bench_lib.sh
g() { [ $(left) -gt $1 ]; }
K8="fp8 --kv-cache int8"
bn k8_new "$K8" 64 X=1
bn k8_old "$K8" 64 TRTFORGE_ACX_PRE=8
bn f16_new fp16 64 X=1
bn f16_old fp16 64 TRTFORGE_ACX_PRE=8
ck ck_attn 40 TRTFORGE_CHECKS=attn TRTFORGE_ATTN=cx8all
ck ck_pre 40 TRTFORGE_CHECKS=prefill TRTFORGE_ATTN=cx8all TRTFORGE_ATTN_CS=1
g 50 && bn k8_p0 "$K8" 64 TRTFORGE_ACX_PRE=0
g 40 && bn f16_p0 fp16 64 TRTFORGE_ACX_PRE=0
g 50 && bn k8_old2 "$K8" 64 TRTFORGE_ACX_PRE=8
g 50 && bn k8_new2 "$K8" 64 X=1
g 40 && bn f16_old2 fp16 64 TRTFORGE_ACX_PRE=8
g 40 && bn f16_new2 fp16 64 X=1
g 60 && { timeout 50 $B cuda-check --tiny tests/fixtures/tiny_llama --paged > $R/paged.log 2>&1; echo "paged rc=$? $(t)"; grep -E "FAIL|passed|rror" $R/paged.log | tail -3 | cut -c1-140; }
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
