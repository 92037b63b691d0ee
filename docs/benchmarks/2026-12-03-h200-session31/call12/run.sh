#!/usr/bin/env bash
# Session 31 call 12 (the session's final comparison): the engine's fp16 bs1 default (carry .carry/s30a; src/ unchanged
# since 80664d4) and the probe's best variants, alternated in one call: probes, engine, probes again, engine again.
# Runner: call1/run.sh (builds and first runs), then the same binaries again.
D=docs/benchmarks/2026-12-03-h200-session31; S9=$D/mk9/mk9.cu; B="-DGRAB_AT=1,-DATTACQ=1"
export O=/tmp/s31l
VARS="b:$S9:$B a20:$S9:$B,-DACH=20 best:$S9:$B,-DACH=20,-DDHEAD=1,-DNSLOT=12" bash $D/call1/run.sh
C=.carry/s30a; export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc
for V in b a20 best; do timeout 60 /tmp/mk_$V > $O/mk_${V}_2.log 2>&1; echo "mk $V again rc=$?"; grep -E "median|determinism|step 1" $O/mk_${V}_2.log; done
timeout 60 $C/trtforge bench --isolate never --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 \
  --model preset:tinyllama-1.1b --json $O/engine2.json > $O/engine2.log 2>&1; echo "engine again rc=$?"; grep -E "^\| fp16" $O/engine2.log
tar czf ${OUT:-/tmp}/s31l.tgz -C /tmp s31l; true
