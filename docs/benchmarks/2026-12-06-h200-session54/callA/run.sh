#!/usr/bin/env bash
# Session 54 call A = session 53's prepared next/run.sh with the carry renamed (carry [".carry/z"] = s54:
# `bash scripts/gpu_carry.sh s54` at aace01b): cx12 vs cx8 at fp16 / int4 bs64, greedy smoke, cx12 check lists.
DL=${DL:-400}
NAME=s54 . scripts/gpu_bench_lib.sh
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
