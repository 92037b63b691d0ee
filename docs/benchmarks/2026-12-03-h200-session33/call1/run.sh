#!/usr/bin/env bash
# Prepared in session 32, NOT RUN (the session's device time ran out): the first run of branch mk-engine's engine path
# (TRTFORGE_MK=1: the one-row decode step as one mk_step launch, then argmax + advance + mk_epoch) on the H200.
# Branch mk-engine is also saved as next/mk-engine.patch (git am it onto main at f2acd55 or later: it touches only
# src/ and scripts/). Carry .carry/s32mk (the branch's stripped release binary + its NVRTC kernel cache for the TinyLlama fp16 bs1 engine,
# default module and the sm_90a module with the megakernel); if it is gone, rebuild it from branch mk-engine:
#   cargo build --release; C=.carry/s32mk; mkdir -p $C/K; cp target/release/trtforge $C/; strip $C/trtforge
#   for m in 1 0; do LD_LIBRARY_PATH=<NVRTC lib> TRTFORGE_CACHE_DIR=$C/K TRTFORGE_CUDA_PRECOMPILE=sm_90 TRTFORGE_MK=$m \
#     $C/trtforge bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never; done
# 1. Correctness: greedy token ids of a 512-token prompt, 64 new tokens, with and without TRTFORGE_MK=1 (the same
#    engine otherwise; generate sizes the KV cache to prompt + new = 576 -> 768 positions, under mk::max_len() = 960).
# 2. Speed: trtforge bench fp16 bs1, alternated default / TRTFORGE_MK=1 twice.
set -uo pipefail
C=.carry/s32mk; O=/tmp/mke; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/K/* /tmp/kc/
trap 'tar czf ${OUT:-/tmp}/mke.tgz -C /tmp mke' EXIT
IDS=$(python3 -c "print(','.join(str((i * 7919 + 13) % 32000) for i in range(512)))")
G="$C/trtforge generate --model preset:tinyllama-1.1b --backend cuda --precision fp16 --greedy --print-ids --max-new-tokens 64 --prompt-ids $IDS"
timeout 120 $G > $O/ids_default.txt 2> $O/gen_default.log; echo "generate default rc=$?"
TRTFORGE_MK=1 timeout 120 $G > $O/ids_mk.txt 2> $O/gen_mk.log; echo "generate mk rc=$? $(grep -i 'mk\|error' $O/gen_mk.log | head -3)"
if cmp -s $O/ids_default.txt $O/ids_mk.txt; then echo "greedy ids: EQUAL ($(wc -w < $O/ids_mk.txt) words)"; else echo "greedy ids: DIFFER"; head -c 400 $O/ids_default.txt; echo; head -c 400 $O/ids_mk.txt; echo; fi
B="$C/trtforge bench --isolate never --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --model preset:tinyllama-1.1b"
for i in 1 2; do
  timeout 90 $B --json $O/default$i.json > $O/default$i.log 2>&1; echo "default$i rc=$?"; grep -E "^\| fp16" $O/default$i.log
  TRTFORGE_MK=1 timeout 90 $B --json $O/mk$i.json > $O/mk$i.log 2>&1; echo "mk$i rc=$?"; grep -E "^\| fp16|TRTFORGE_MK" $O/mk$i.log
done
