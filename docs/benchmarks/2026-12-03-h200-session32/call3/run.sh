#!/usr/bin/env bash
# Session 32 call 3 (runner for the later calls too: VARS = name:flags|..., O = output folder): call 2 pinned the race on
# POLL1=0 under PROF=2 (both configurations; POLL1=1 and EW=0 do not race); the first difference is layer 0's
# gate/up / down. Hypothesis: a consumer warp reaches `bar.sync` (= barrier.sync.aligned) diverged (lanes leave
# polla's retry loop apart; PROF's thread-0 branches), which the aligned form leaves undefined. CBAR=1 (__syncwarp
# first) / 2 (barrier.sync, not aligned) under the racing builds, then the speed of CBAR and of qkv split-K (QKS).
set -uo pipefail
D=docs/benchmarks/2026-12-03-h200-session32; S=$D/mk10/mk10.cu; O=${O:-/tmp/c3}; mkdir -p $O; export PATH=/usr/local/cuda/bin:$PATH
trap 'sha256sum $S > $O/sources.sha256; tar czf ${OUT:-/tmp}/$(basename $O).tgz -C /tmp $(basename $O)' EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; } > $O/env.txt 2>&1; cat $O/env.txt
V9="-DDGU=0 -DDHEAD=0 -DPOLL1=0 -DGRAB_AT=-1 -DATTACQ=0 -DNSLOT=11 -DACH=16"
VARS=${VARS:-"r_cb1:$V9 -DPROF=2 -DCBAR=1|r_cb2:$V9 -DPROF=2 -DCBAR=2|bp0_cb1:-DPROF=2 -DPOLL1=0 -DCBAR=1|q4p0_cb1:-DQKS=4 -DPROF=2 -DPOLL1=0 -DCBAR=1|best:|cb1:-DCBAR=1|cb2:-DCBAR=2|q2:-DQKS=2 -DCBAR=1|q4:-DQKS=4 -DCBAR=1|best_b:|cb1_b:-DCBAR=1|q4_b:-DQKS=4 -DCBAR=1|q4tr:-DQKS=4 -DCBAR=1 -DTRACE=1|besttr:-DTRACE=1"}
IFS='|' read -ra VS <<< "$VARS"
for v in "${VS[@]}"; do n=${v%%:*}; f=${v#*:}; ( nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 $f $S -o /tmp/mk_$n > $O/build_$n.log 2>&1 || echo "build $n FAILED" ) & done; wait
for v in "${VS[@]}"; do n=${v%%:*}; case $n in r_*|bp*|q4p*|*dbg|b0_*) R=${MK_DET_RACE:-50};; *) R=${MK_DET:-6};; esac
  MK_DET=$R timeout 120 /tmp/mk_$n > $O/mk_$n.log 2>&1; echo "$n rc=$? $(grep -E 'step 1 logits|bitwise|greedy|median' $O/mk_$n.log | sed -E 's/max \|mk.*rel/rel/; s/; argmax.*//; s/weights.*//; s/ \(first.*//; s/determinism: step 1 repeated/det/' | tr '\n' ' ')"
  grep -m2 "first differs" $O/mk_$n.log; grep "^trace" $O/mk_$n.log; done
