#!/usr/bin/env bash
# Session 35, call 5: is call 4's SmolLM2-shape fp16 bs1 (2,265 tok/s; 2,357-2,393 in sessions 24-29) a regression?
# Main a979df6 + the diagnostic switch TRTFORGE_LOOP_GRAPH=0 (bs1 greedy loop one graph a step, as before session 33)
# beside session 32's main 49d35f8 (before the loop graphs, hist_put and the megakernel), alternated, one process each.
# Carry .carry/z/m40.tgz (both stripped binaries + their NVRTC modules for SmolLM2 / TinyLlama fp16, NVRTC 13.0.88).
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/m40.tgz -C /tmp/cz && for b in m40 m40/old; do gunzip -f /tmp/cz/$b/trtforge.gz && chmod +x /tmp/cz/$b/trtforge; done
O=/tmp/c5; mkdir -p $O /tmp/kn /tmp/ko; cp /tmp/cz/m40/K/* /tmp/kn/; cp /tmp/cz/m40/old/K/* /tmp/ko/
trap "tar czf $OUT/c5.tgz -C /tmp c5" EXIT
export LD_LIBRARY_PATH=/usr/local/cuda/lib64; T0=$(date +%s)
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; cat /tmp/cz/m40/commit.txt /tmp/cz/m40/old/commit.txt; } | tee $O/env.txt
run() { # name model bin cache [env...]
  local n=$1 m=$2 b=$3 k=$4; shift 4
  env TRTFORGE_CACHE_DIR=$k "$@" timeout 40 /tmp/cz/$b/trtforge bench --model preset:$m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never --json $O/$n.json > $O/$n.log 2>&1
  echo "$n rc=$? t=$(( $(date +%s) - T0 ))"; grep -E "^\| fp16|rror" $O/$n.log | cut -c1-120; }
for i in 1 2 3; do
  run s_new_$i smollm2-135m m40 /tmp/kn; run s_old_$i smollm2-135m m40/old /tmp/ko; run s_noloop_$i smollm2-135m m40 /tmp/kn TRTFORGE_LOOP_GRAPH=0
done
run t_new tinyllama-1.1b m40 /tmp/kn; run t_old tinyllama-1.1b m40/old /tmp/ko; run t_noloop tinyllama-1.1b m40 /tmp/kn TRTFORGE_LOOP_GRAPH=0
