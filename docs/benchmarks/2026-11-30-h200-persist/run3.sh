#!/usr/bin/env bash
# persist call 3 (short): per-phase stamps of persist_layer (TinyLlama fp16 bs1) + SmolLM2-shape launch fix.
set -uo pipefail
C=.carry/persist; B=$C/trtforge; O=${OUT:-/tmp/out}; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kc2/* /tmp/kc/
TRTFORGE_PERSIST=1 TRTFORGE_PERSIST_STAMPS=1 timeout 17 $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 > $O/stamps_tl.log 2>&1; echo rc=$?
grep -E "eager decode|tok/s" $O/stamps_tl.log
TRTFORGE_PERSIST=1 TRTFORGE_PERSIST_STAMPS=1 timeout 7 $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 > $O/stamps_sm.log 2>&1; echo rc=$?
grep -E "eager decode|tok/s|error" $O/stamps_sm.log
