#!/usr/bin/env bash
# Session 32 call 4: call 3's runner (call3/run.sh) with DBGA builds: per layer, whether each block's down staging read
# the SwiGLU values as written and each gate/up staging the h after o in the tags buffer, and whether the written
# SwiGLU values differ between repeats (the race needs POLL1=0 + PROF=2; CBAR did not fix it).
V9="-DDGU=0 -DDHEAD=0 -DPOLL1=0 -DGRAB_AT=-1 -DATTACQ=0 -DNSLOT=11 -DACH=16"
export O=/tmp/c4 VARS="r_dbg:$V9 -DPROF=2 -DDBGA=1|b0_dbg:-DPROF=2 -DPOLL1=0 -DDBGA=1|rp1_dbg:$V9 -DPROF=1 -DDBGA=1|best_dbg:-DDBGA=1"
bash docs/benchmarks/2026-12-03-h200-session32/call3/run.sh
for n in r_dbg b0_dbg rp1_dbg best_dbg; do echo "== $n"; grep -m6 "dbga" /tmp/c4/mk_$n.log; done
