#!/usr/bin/env bash
# Session 54 call C (carry [".carry/z"] = s54c: `bash scripts/gpu_carry.sh s54c` at the commit that added
# TRTFORGE_ATTN_CSF): the bs64 decode attention split over more blocks. Call B's in-graph timeline put attn_decode_cx8
# (256 blocks, one per (row, kv head), 4 tiles a warp, 2 in flight) at 21.4 µs a layer from entry to last exit, the
# blocks' exits spread over 10 µs, where its 33.6 MB of K / V take ≈ 11 µs at the copy rate. Forced clusters of 2 / 4
# blocks a (kv head, row) give each warp 2 / 1 tiles (all issued before griddepcontrol.wait; a second wave of blocks):
# cx8 (8 warps) and cx (4 warps, 4 stages) each way, fp16 bs64 interleaved, then the best at int4, the in-graph
# timeline of each variant, and the attn check list with a forced cluster.
DL=${DL:-400}
NAME=s54c . scripts/gpu_bench_lib.sh
tl() { grep -E "rep2 timeline +attn" $R/$1.log | cut -c1-170; }
bn f16_a fp16 64 X=1
bn f16_c2 fp16 64 TRTFORGE_ATTN_CSF=2
bn f16_c4 fp16 64 TRTFORGE_ATTN_CSF=4
bn f16_x2 fp16 64 TRTFORGE_ATTN=cxall TRTFORGE_ATTN_CSF=2
bn f16_x4 fp16 64 TRTFORGE_ATTN=cxall TRTFORGE_ATTN_CSF=4
bn f16_b fp16 64 X=1
bn f16_c2b fp16 64 TRTFORGE_ATTN_CSF=2
bn f16_c4b fp16 64 TRTFORGE_ATTN_CSF=4
bn f16_x2b fp16 64 TRTFORGE_ATTN=cxall TRTFORGE_ATTN_CSF=2
bn f16_x4b fp16 64 TRTFORGE_ATTN=cxall TRTFORGE_ATTN_CSF=4
for v in "c1 X=1" "c2 TRTFORGE_ATTN_CSF=2" "c4 TRTFORGE_ATTN_CSF=4" "x2 TRTFORGE_ATTN=cxall TRTFORGE_ATTN_CSF=2" \
         "x4 TRTFORGE_ATTN=cxall TRTFORGE_ATTN_CSF=4"; do
  set -- $v; n=$1; shift
  [ $(left) -gt 150 ] || break
  bn tl_$n fp16 64 TRTFORGE_TIMELINE=1 "$@" > /dev/null; tl tl_$n
done
[ $(left) -gt 110 ] && bn i4_a int4 64 X=1
[ $(left) -gt 90 ] && bn i4_c2 int4 64 TRTFORGE_ATTN_CSF=2
[ $(left) -gt 70 ] && bn i4_c4 int4 64 TRTFORGE_ATTN_CSF=4
[ $(left) -gt 40 ] && ck attn_c2 $(( $(left) - 10 )) TRTFORGE_ATTN=cx8all TRTFORGE_ATTN_CSF=2 TRTFORGE_CHECKS=attn
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
