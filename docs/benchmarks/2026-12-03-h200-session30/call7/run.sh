#!/usr/bin/env bash
# Session 30 call 7: megakernel probe v8 (SSCHED: the block's schedule in shared memory — call 6's SASS showed each
# entry's schedule read as an LDG after the acquire polls' CCTL.IVALL, i.e. an L2 round trip an entry), beside v4
# (SSCHED=0) and the engine's fp16 bs1 default in the same call (carry .carry/s30a from call1/prep.sh).
set -uo pipefail
D=docs/benchmarks/2026-12-03-h200-session30; C=.carry/s30a; O=/tmp/s30d
VARS="v8:mk:-DAKV=0,-DROT=0 v4:mk:-DAKV=0,-DROT=0,-DSSCHED=0 v8prof:mk:-DAKV=0,-DROT=0,-DPROF=1 v8akv:mk: v8fg:mk:-DAKV=0,-DROT=0,-DFG=1 v8nw:mk:-DAKV=0,-DROT=0,-DNOWAIT=1 v8a16:mk:-DAKV=0,-DROT=0,-DACH=16,-DXAREA=16384" \
  bash $D/call4/run.sh
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/K/* /tmp/kc/ 2>/dev/null
TRTFORGE_GUD=0 timeout 50 $C/trtforge bench --isolate never --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 \
  --model preset:tinyllama-1.1b --json $O/engine.json > $O/engine.log 2>&1; echo "engine rc=$?"; grep -E "^\| fp16" $O/engine.log
timeout 30 /tmp/mk_v8 > $O/mk_v8_again.log 2>&1; echo "v8 again rc=$?"; grep median $O/mk_v8_again.log
tar czf ${OUT:-/tmp}/s30g.tgz -C /tmp s30d; true
