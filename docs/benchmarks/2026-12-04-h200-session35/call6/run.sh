#!/usr/bin/env bash
# Session 35, call 6: the bs1 loop graphs (session 33) against one graph a step (TRTFORGE_LOOP_GRAPH=0) — call 5 found
# the default path slower with them (SmolLM2 shape -4.5 %, TinyLlama -1 %); here the megakernel path (TRTFORGE_MK=1)
# and more TinyLlama default pairs, alternated, one process each. Carry .carry/z/m40.tgz (as call 5, + the MK module).
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/m40.tgz -C /tmp/cz && gunzip -f /tmp/cz/m40/trtforge.gz && chmod +x /tmp/cz/m40/trtforge
O=/tmp/c6; mkdir -p $O /tmp/kn; cp /tmp/cz/m40/K/* /tmp/kn/
trap "tar czf $OUT/c6.tgz -C /tmp c6" EXIT
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kn; T0=$(date +%s)
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; cat /tmp/cz/m40/commit.txt; } | tee $O/env.txt
run() { # name [env...]
  local n=$1; shift
  env "$@" timeout 40 /tmp/cz/m40/trtforge bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never --json $O/$n.json > $O/$n.log 2>&1
  echo "$n rc=$? t=$(( $(date +%s) - T0 ))"; grep -E "^\| fp16|rror" $O/$n.log | cut -c1-120; }
for i in 1 2; do
  run mk_loop_$i TRTFORGE_MK=1; run mk_noloop_$i TRTFORGE_MK=1 TRTFORGE_LOOP_GRAPH=0
  run def_loop_$i X=1; run def_noloop_$i TRTFORGE_LOOP_GRAPH=0
done
