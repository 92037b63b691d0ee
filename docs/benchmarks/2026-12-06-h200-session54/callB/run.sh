#!/usr/bin/env bash
# Session 54 call B (carry [".carry/z"] = s54b: `bash scripts/gpu_carry.sh s54b` at the commit that removed
# attn_decode_cx12; the default kernels are aace01b's): #11 / #15's whole table on the final code beside the peer in
# one lease — the tiny fixture's paged checks, bs1 every precision + the SmolLM2 shape, bs8 fp16 / int4 / int8,
# bs64 every precision, then the peer's fp16 at bs 1 / 8 / 64; with time left, the in-graph timeline of the fp16 /
# int4 bs64 steps (TRTFORGE_TIMELINE=1, carried module: `VARIANT=TRTFORGE_TIMELINE=1`): the decode attention's span in
# the graph, where session 53's ncu measured it alone (17.8 µs a layer, no PDL overlap).
DL=${DL:-560}
NAME=s54b . scripts/gpu_bench_lib.sh
timeout 100 $B cuda-check --tiny tests/fixtures/tiny_llama --paged > $R/paged.log 2>&1
echo "paged rc=$? $(t)"; grep -E "FAIL|passed|rror" $R/paged.log | tail -4 | cut -c1-140
for p in fp16 int4 int8 fp8; do bn ${p}_1 $p 1 X=1; done
timeout 80 $B bench --isolate never --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 \
  --output-len 128 --json $R/smol_1.json > $R/smol_1.log 2>&1
echo "smol_1 rc=$? $(t)"; grep -E '^\| (fp|int)|rror|compil' $R/smol_1.log | cut -c1-140
for p in fp16 int4 int8; do bn ${p}_8 $p 8 X=1; done
for p in fp16 int4 int8 fp8; do bn ${p}_64 $p 64 X=1; done
peer torch_peer --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 8 64 --input-lens 512 --output-len 128 \
  --runs 2 --warmup 1 --eager-prefill
for p in fp16 int4; do
  [ $(left) -gt 45 ] || break
  bn tl_${p}_64 $p 64 TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_RAW=$R
  grep -E "rep2" $R/tl_${p}_64.log | cut -c1-160
done
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
