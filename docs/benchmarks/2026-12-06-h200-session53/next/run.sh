#!/usr/bin/env bash
# Prepared in session 53 for the next lease (the session's device budget was spent); ran as session 54's call A with
# CARRY=s54 (docs/benchmarks/2026-12-06-h200-session54/callA/run.sh). Carry [".carry/z"] = `bash scripts/gpu_carry.sh
# $CARRY` (default s53f) at d5f09a1 or later with the same src/ (≈ 5 min here). ≈ 330 s.
#  1. the opt-in 12-warp decode attention (TRTFORGE_ATTN=cx12: two 12-warp blocks an SM where cx8 holds two of 8;
#     session 53 call F put cx8 at 0.23 eligible of 3.73 warps a scheduler, DRAM 59 %) against the default cx8 in the
#     fp16 and int4 bs64 steps, interleaved;
#  2. a greedy smoke check (520-token prompt, 32 new, seeded TinyLlama-shape weights) with cx8 / cx12 forced;
#  3. its check lists with it forced at every batch size: `attn` (tiny32: f16 / int8 / fp8 KV, static and paged) and
#     `prefill` with TRTFORGE_ATTN_CS=1 (one block walks a whole 497-token sequence).
# If it wins: the TinyLlama-shape checks (`TRTFORGE_ATTN=cx12all TRTFORGE_CHECKS=attn cuda-check --tinyllama`), then make
# it the default where cx8 runs (mod.rs ACX_DEFAULT / the warps choice). If it ties or loses: remove it.
DL=${DL:-400}
NAME=${CARRY:-s53f} . scripts/gpu_bench_lib.sh
bn f16_a fp16 64 X=1
bn f16_cx12 fp16 64 TRTFORGE_ATTN=cx12
bn i4_a int4 64 X=1
bn i4_cx12 int4 64 TRTFORGE_ATTN=cx12
bn f16_b fp16 64 X=1
bn f16_cx12b fp16 64 TRTFORGE_ATTN=cx12
ids=$(python3 -c "import random; r=random.Random(53); print(','.join(str(r.randrange(1, 32000)) for _ in range(520)))")
for a in default cx8all cx12all; do
  [ $(left) -gt 60 ] || break
  env $([ $a = default ] || echo TRTFORGE_ATTN=$a) timeout 40 $B generate --model preset:tinyllama-1.1b --backend cuda \
    --precision fp16 --prompt-ids $ids --max-new-tokens 32 --greedy --print-ids > $R/gen_$a.txt 2> $R/gen_$a.err
  echo "gen $a rc=$? $(t): $(tail -c 200 $R/gen_$a.txt | tr '\n' ' ')"
done
[ $(left) -gt 60 ] && ck attn_cx12 $(( $(left) - 15 )) TRTFORGE_ATTN=cx12all TRTFORGE_CHECKS=attn
[ $(left) -gt 30 ] && ck prefill_cx12 $(( $(left) - 10 )) TRTFORGE_ATTN=cx12all TRTFORGE_ATTN_CS=1 TRTFORGE_CHECKS=prefill
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
