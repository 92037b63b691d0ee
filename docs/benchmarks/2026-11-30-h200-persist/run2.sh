#!/usr/bin/env bash
# persist (issue #11), for the lead's final lease (~45 s warm, merged binary + its kcache already in
# $TRTFORGE_CACHE_DIR): per-phase stamps of the persistent layer and the SmolLM2-shape launch fix.
# Usage: B=path/to/trtforge bash .carry/persist/run2.sh   (writes $OUT/persist_*.log)
set -uo pipefail
B=${B:?set B to the trtforge binary}; O=${OUT:-/tmp/out}; mkdir -p $O
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-/usr/local/cuda/lib64}
TRTFORGE_PERSIST=1 TRTFORGE_PERSIST_STAMPS=1 timeout 40 $B bench --model preset:tinyllama-1.1b --precisions fp16,int4 \
  --batch-sizes 1 --input-lens 512 --output-len 128 > $O/persist_tl.log 2>&1; echo rc=$?
grep -E "eager decode|persist|^\| (fp16|int4)" $O/persist_tl.log
TRTFORGE_PERSIST=1 TRTFORGE_PERSIST_STAMPS=1 timeout 20 $B bench --model preset:smollm2-135m --precisions fp16 \
  --batch-sizes 1 --input-lens 512 --output-len 128 > $O/persist_sm.log 2>&1; echo rc=$?
grep -E "eager decode|persist|^\| fp16|error" $O/persist_sm.log
