#!/usr/bin/env bash
# Session 65, call A: the one-row decode megakernel (`TRTFORGE_MK=1`) on the SmolLM2 shape (hidden 576: 576-wide
# chunks; 3 query heads a kv head), first run. SmolLM2 fp16 bs1 default path and megakernel alternated, TinyLlama
# fp16 bs1 both (its kernel source is the same code with its old defines), then the megakernel checks against the
# CPU reference (`TRTFORGE_CHECKS=mk`: SmolLM2 first, then TinyLlama and the greedy-loop graphs).
# Carry s65a (`bash scripts/gpu_carry.sh s65a`; `.carry/z`). `run` with carry [".carry/z"].
DL=${DL:-330}
NAME=${NAME:-s65a}
. scripts/gpu_bench_lib.sh
SM=("${TL[@]/preset:tinyllama-1.1b/preset:smollm2-135m}")
for i in 1 2; do
  (TL=("${SM[@]}"); bn smol_def_$i fp16 1 X=1)
  (TL=("${SM[@]}"); bn smol_mk_$i fp16 1 TRTFORGE_MK=1)
done
bn tl_def fp16 1 X=1
bn tl_mk fp16 1 TRTFORGE_MK=1
grep -h "TRTFORGE_MK\|megakernel" $R/*_mk*.log | sort | uniq -c | head -5
ck mk $(( $(left) - 30 )) TRTFORGE_MK=1 TRTFORGE_CHECKS=mk
grep -E "PASS|FAIL|error" $R/mk.log | cut -c1-200
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
