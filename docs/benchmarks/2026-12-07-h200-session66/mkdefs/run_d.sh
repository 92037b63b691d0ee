#!/usr/bin/env bash
# Session 66, call D: the SmolLM2-shape megakernel's device-only switches (`TRTFORGE_MK_DEFS`, defines of
# kernels_mk.cu that change no host-side layout), each beside the plain megakernel and the default path:
#   MK_GRAB_AT=-1    a gate/up or head loader takes its next ticket before its tile's first chunk (one tile ahead)
#   MK_POLL1=0       the stagings load all their tagged words at once (no one-word-a-warp spin first)
#   MK_POLL1MIN=2    the one-word spin for stagings of >= 2 values a thread (SmolLM2's have 3 and 6: none today)
#   MK_CBAR=1        __syncwarp before the consumers' bar.sync
#   MK_ATTACQ=0      the attention's count as fence + atomicAdd + fence
# Carry s66a (`.carry/z`) with these variants' modules precompiled (TRTFORGE_CUDA_PRECOMPILE=sm_90 TRTFORGE_MK=1
# TRTFORGE_MK_DEFS=..., SmolLM2 preset bench). `run` with carry [".carry/z"].
DL=${DL:-150}
NAME=${NAME:-s66a}
. scripts/gpu_bench_lib.sh
TL=("${TL[@]/preset:tinyllama-1.1b/preset:smollm2-135m}")
for i in 1 2; do
  bn def_$i fp16 1 X=1
  bn mk_$i fp16 1 TRTFORGE_MK=1
  for d in MK_GRAB_AT=-1 MK_POLL1=0 MK_POLL1MIN=2 MK_CBAR=1 MK_ATTACQ=0 MK_POLL1MIN=2,MK_GRAB_AT=-1; do
    [ $(left) -gt 20 ] && bn "mk_${d//[=,]/_}_$i" fp16 1 TRTFORGE_MK=1 TRTFORGE_MK_DEFS=$d
  done
done
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
