#!/usr/bin/env bash
# Session 32 call 2: bisect the race (call 1: the racing configuration under PROF=2 races with and without TREC /
# RECFENCE, so not the attention records alone; the best configuration under PROF=2 does not). Each switch that differs
# between the two flipped one at a time, in both directions, all under PROF=2, 20 repeats; mk10.cu prints where a
# differing repeat first differs (layer, qkv / hm / hx).
set -uo pipefail
D=docs/benchmarks/2026-12-03-h200-session32; S=$D/mk10/mk10.cu; O=/tmp/c2; mkdir -p $O; export PATH=/usr/local/cuda/bin:$PATH
trap 'sha256sum $S > $O/sources.sha256; tar czf ${OUT:-/tmp}/c2.tgz -C /tmp c2' EXIT
V9="-DDGU=0 -DDHEAD=0 -DPOLL1=0 -DGRAB_AT=-1 -DATTACQ=0 -DNSLOT=11 -DACH=16"
VARS=${VARS:-"p2:$V9 -DPROF=2|p1:$V9 -DPROF=1|p2ew0:$V9 -DPROF=2 -DEW=0 -DNPB=2|p2_dgu:$V9 -DPROF=2 -DDGU=1|p2_dhead:$V9 -DPROF=2 -DDHEAD=1|p2_poll1:$V9 -DPROF=2 -DPOLL1=1|p2_acq:$V9 -DPROF=2 -DATTACQ=1|p2_ns12:$V9 -DPROF=2 -DNSLOT=12|p2_ach20:$V9 -DPROF=2 -DACH=20|b2:-DPROF=2|b2_dgu0:-DPROF=2 -DDGU=0|b2_dhead0:-DPROF=2 -DDHEAD=0|b2_poll0:-DPROF=2 -DPOLL1=0|b2_acq0:-DPROF=2 -DATTACQ=0|b2_ns11:-DPROF=2 -DNSLOT=11|b2_ach16:-DPROF=2 -DACH=16"}
IFS='|' read -ra VS <<< "$VARS"
for v in "${VS[@]}"; do n=${v%%:*}; f=${v#*:}; ( nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 $f $S -o /tmp/mk_$n > $O/build_$n.log 2>&1 || echo "build $n FAILED" ) & done; wait
for v in "${VS[@]}"; do n=${v%%:*}; MK_DET=${MK_DET:-20} timeout 120 /tmp/mk_$n > $O/mk_$n.log 2>&1; echo "$n rc=$? $(grep -E 'step 1 logits|bitwise|median' $O/mk_$n.log | sed -E 's/max \|mk.*rel/rel/; s/; argmax.*//; s/weights.*//' | tr '\n' ' ')"; grep -m2 "first differs" $O/mk_$n.log; done
