#!/usr/bin/env bash
# Session 35, call 7: the fix (bs1 loop graphs for megakernel steps only) on the final binary — SmolLM2 shape and
# TinyLlama fp16 bs1 default, the megakernel path, TinyLlama fp16 bs8, each twice; the MK checks once (its path is
# unchanged). Carry .carry/z/m41.tgz (binary + NVRTC modules, NVRTC 13.0.88).
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/m41.tgz -C /tmp/cz && gunzip -f /tmp/cz/m41/trtforge.gz && chmod +x /tmp/cz/m41/trtforge
O=/tmp/c7; mkdir -p $O /tmp/kn; cp /tmp/cz/m41/K/* /tmp/kn/
trap "tar czf $OUT/c7.tgz -C /tmp c7" EXIT
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kn; T0=$(date +%s)
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; cat /tmp/cz/m41/commit.txt; sha256sum /tmp/cz/m41/trtforge; } | tee $O/env.txt
run() { # name model batch [env...]
  local n=$1 m=$2 bs=$3; shift 3
  env "$@" timeout 40 /tmp/cz/m41/trtforge bench --model preset:$m --precisions fp16 --batch-sizes $bs --input-lens 512 --output-len 128 --isolate never --json $O/$n.json > $O/$n.log 2>&1
  echo "$n rc=$? t=$(( $(date +%s) - T0 ))"; grep -E "^\| fp16|rror" $O/$n.log | cut -c1-120; }
for i in 1 2; do
  run smollm2_$i smollm2-135m 1 X=1; run tiny_$i tinyllama-1.1b 1 X=1; run tiny_mk_$i tinyllama-1.1b 1 TRTFORGE_MK=1; run tiny_bs8_$i tinyllama-1.1b 8 X=1
done
