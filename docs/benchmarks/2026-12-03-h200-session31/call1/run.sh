#!/usr/bin/env bash
# Session 31 call 1: megakernel probe v9 (mk9/mk9.cu: tagged activations instead of counters + fences, full-K o / down
# with the residual by the rows' owner, an epilogue warp) against session 30's best v8 (mk/mk.cu) and the engine's fp16
# bs1 default, in one call. Variants as name:source:flags (flags comma-separated). Engine: carry .carry/s30a
# (session 30's call1/prep.sh: src/ unchanged since).
set -uo pipefail
D=docs/benchmarks; O=${O:-/tmp/s31a}; mkdir -p $O
export PATH=/usr/local/cuda/bin:$PATH
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { sha256sum $S9 $S8 > $O/sources.sha256 2>/dev/null; tar czf ${OUT:-/tmp}/$(basename $O).tgz -C /tmp $(basename $O); }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; uname -r; } > $O/env.txt 2>&1; cat $O/env.txt
S9=$D/2026-12-03-h200-session31/mk9/mk9.cu; S8=$D/2026-12-03-h200-session30/mk/mk.cu
VARS=${VARS:-"v9:$S9: v9ew0:$S9:-DEW=0,-DNPB=2 v9prof:$S9:-DPROF=1 v9ns:$S9:-DPOLLNS=100 v9ew0prof:$S9:-DEW=0,-DNPB=2,-DPROF=1 v8best:$S8:-DAKV=0,-DROT=0,-DACH=16,-DXAREA=16384"}
for spec in $VARS; do IFS=: read V S F <<< "$spec"; F=${F//,/ }
  ( nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v $F $S -o /tmp/mk_$V > $O/build_$V.log 2>&1; echo "build $V rc=$? $(grep -A2 'for _Z7mk_step' $O/build_$V.log | grep -oE 'Used [0-9]+ registers')" ) & done; wait; t
for spec in $VARS; do IFS=: read V S F <<< "$spec"; timeout 60 /tmp/mk_$V > $O/mk_$V.log 2>&1; echo "mk $V rc=$?"; grep -vE "^rep [123]|^device|^schedule" $O/mk_$V.log | tail -16; t; done
if [ -z "${NOENG:-}" ]; then
  C=.carry/s30a; export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/K/* /tmp/kc/ 2>/dev/null
  timeout 60 $C/trtforge bench --isolate never --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 \
    --model preset:tinyllama-1.1b --json $O/engine.json > $O/engine.log 2>&1; echo "engine rc=$?"; grep -E "^\| fp16" $O/engine.log; t
fi
true
