#!/usr/bin/env bash
# Session 32 call 4: call 3's runner (call3/run.sh) with DBGA builds: per layer, whether each block's down staging read
# the SwiGLU values as written and each gate/up staging the h after o in the tags buffer, and whether the written
# SwiGLU values differ between repeats (the race needs POLL1=0 + PROF=2; CBAR did not fix it). DBGB: the down
# stagings compare each value read with a fenced plain copy and log mismatches.
V9="-DDGU=0 -DDHEAD=0 -DPOLL1=0 -DGRAB_AT=-1 -DATTACQ=0 -DNSLOT=11 -DACH=16"
export O=/tmp/c4 VARS="r_dbg:$V9 -DPROF=2 -DDBGA=1|b0_dbg:-DPROF=2 -DPOLL1=0 -DDBGA=1|r_dbgb:$V9 -DPROF=2 -DDBGA=1 -DDBGB=1|b0_dbgb:-DPROF=2 -DPOLL1=0 -DDBGA=1 -DDBGB=1|best_dbg:-DDBGA=1"
bash docs/benchmarks/2026-12-03-h200-session32/call3/run.sh
for n in r_dbg b0_dbg r_dbgb b0_dbgb best_dbg; do echo "== $n"; grep -m12 "dbg" /tmp/c4/mk_$n.log; done
