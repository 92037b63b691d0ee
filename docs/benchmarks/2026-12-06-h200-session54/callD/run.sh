#!/usr/bin/env bash
# Session 54 call D (carry [".carry/z"] = s54d: `VARIANT="TRTFORGE_ACX_ROT=1; TRTFORGE_ACX_ROT=1 TRTFORGE_TIMELINE=1;
# TRTFORGE_TIMELINE=1" bash scripts/gpu_carry.sh s54d` at the commit that added TRTFORGE_ACX_ROT): why the bs64 decode
# attention reads its 33.6 MB a layer at ≈ 1.6 TB/s in the step (call B: 21.4 µs from entry to last exit, exits spread
# over 10 µs) when the copy rate is 3.0 TB/s.
#  1. kvstream.py (cupy): the same bytes read by 256 blocks, one per (slot, kv head) from row 0 or from a rotated
#     start, and as a flat grid-stride read — the floor of the access pattern itself;
#  2. TRTFORGE_ACX_ROT=1 (each block walks its tiles from (block mod tiles) on, so the 256 blocks do not all read the
#     same offset of their regions at once) against the default at fp16 / int4 bs64, interleaved, and both in-graph
#     timelines;
#  3. the attn check list with it forced at every batch size (f16 / int8 / fp8 caches, static and paged).
DL=${DL:-400}
NAME=s54d . scripts/gpu_bench_lib.sh
timeout 90 python3 docs/benchmarks/2026-12-06-h200-session54/callD/kvstream.py $R/kvstream.json > $R/kvstream.log 2>&1
echo "kvstream rc=$? $(t)"; cut -c1-150 $R/kvstream.log | tail -24
tl() { grep -E "rep2 timeline +attn" $R/$1.log | cut -c1-170; }
bn f16_a fp16 64 X=1
bn f16_rot fp16 64 TRTFORGE_ACX_ROT=1
bn i4_a int4 64 X=1
bn i4_rot int4 64 TRTFORGE_ACX_ROT=1
bn f16_b fp16 64 X=1
bn f16_rotb fp16 64 TRTFORGE_ACX_ROT=1
bn tl_a fp16 64 TRTFORGE_TIMELINE=1 > /dev/null; tl tl_a
bn tl_rot fp16 64 TRTFORGE_TIMELINE=1 TRTFORGE_ACX_ROT=1 > /dev/null; tl tl_rot
[ $(left) -gt 60 ] && ck attn_rot $(( $(left) - 20 )) TRTFORGE_ATTN=cx8all TRTFORGE_ACX_ROT=1 TRTFORGE_CHECKS=attn
[ $(left) -gt 30 ] && ck prefill_rot $(( $(left) - 10 )) TRTFORGE_ATTN=cx8all TRTFORGE_ATTN_CS=1 TRTFORGE_ACX_ROT=1 TRTFORGE_CHECKS=prefill
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
