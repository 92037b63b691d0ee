#!/usr/bin/env bash
# Session 54 call G (carry [".carry/z"] = s54d, whose default and TRTFORGE_TIMELINE=1 modules are the final kernels'):
# call F ran attn_decode_cx8 alone at 11.6 µs (513 keys), where the in-graph timeline spans ≈ 19–20 µs a layer. Is it
# the graph's programmatic dependent launch? fp16 bs64 with and without it (TRTFORGE_PDL=0), and both timelines.
DL=${DL:-150}
NAME=s54d . scripts/gpu_bench_lib.sh
tl() { grep -E "rep2 timeline +attn" $R/$1.log | cut -c1-170; }
bn f16_a fp16 64 X=1
bn f16_nopdl fp16 64 TRTFORGE_PDL=0
bn tl_a fp16 64 TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_RAW=$R > /dev/null; tl tl_a
mkdir -p $R/np; bn tl_nopdl fp16 64 TRTFORGE_TIMELINE=1 TRTFORGE_PDL=0 TRTFORGE_TIMELINE_RAW=$R/np > /dev/null; tl tl_nopdl
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
