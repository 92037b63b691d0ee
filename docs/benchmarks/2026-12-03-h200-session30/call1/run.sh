#!/usr/bin/env bash
# Session 30 call 1: the megakernel probe (mk/mk.cu: the whole TinyLlama-shape fp16 one-row decode step as one persistent
# launch) beside the engine's fp16 bs1 default in the same call. (1) build 4 variants on the device; (2) each: logits of
# one step and 16 greedy steps against the plain reference, then graphs of 128 steps (prompt 512 + 128);
# (3) trtforge bench fp16 bs1 (main's default) twice, and TRTFORGE_GUD=1 TRTFORGE_GUD_EARLY=1 once.
set -uo pipefail
D=docs/benchmarks/2026-12-03-h200-session30; C=.carry/s30a; B=$C/trtforge; O=/tmp/s30a; mkdir -p $O
export PATH=/usr/local/cuda/bin:$PATH
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s30a.tgz -C /tmp s30a; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bld() { nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v "$@" > $O/build_$V.log 2>&1; echo "build $V rc=$?"; grep -A2 "mk_step" $O/build_$V.log | grep -E "registers|spill" ; }
V=def bld $D/mk/mk.cu -o /tmp/mk_def &
V=nowait bld -DNOWAIT=1 $D/mk/mk.cu -o /tmp/mk_nowait &
V=ncw16 bld -DNCW=16 $D/mk/mk.cu -o /tmp/mk_ncw16 &
V=slot6 bld -DNSLOT=6 $D/mk/mk.cu -o /tmp/mk_slot6 &
wait; t
for V in def nowait ncw16 slot6; do timeout 60 /tmp/mk_$V > $O/mk_$V.log 2>&1; echo "mk $V rc=$?"; cat $O/mk_$V.log; t; done
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/K/* /tmp/kc/ 2>/dev/null
R() { local tag=$1 lim=$2; shift 2; timeout $lim "$@" > $O/$tag.log 2>&1; echo "$tag rc=$?"; grep -E "^\| (fp|int)|rror|PASS|FAIL" $O/$tag.log | cut -c1-300; t; }
TB="$B bench --isolate never --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --model"
TRTFORGE_GUD=0 R tl_off1 50 $TB preset:tinyllama-1.1b --json $O/tl_off1.json
TRTFORGE_GUD=1 TRTFORGE_GUD_EARLY=1 R tl_early 50 $TB preset:tinyllama-1.1b --json $O/tl_early.json
TRTFORGE_GUD=0 R tl_off2 50 $TB preset:tinyllama-1.1b --json $O/tl_off2.json
V=def; timeout 60 /tmp/mk_def > $O/mk_def2.log 2>&1; echo "mk def (again) rc=$?"; grep -E "rep|median" $O/mk_def2.log; t
true
