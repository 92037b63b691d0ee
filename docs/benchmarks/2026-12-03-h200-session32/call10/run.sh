#!/usr/bin/env bash
# Session 32 call 10: a longer determinism stress of the race-fixed probe (PFX=4, mk10's default): 500 repeats of
# step 1 in the default build, the formerly racing configurations under per-chunk timers, and the trace build.
V9="-DDGU=0 -DDHEAD=0 -DPOLL1=0 -DGRAB_AT=-1 -DATTACQ=0 -DNSLOT=11 -DACH=16"
export O=/tmp/c10 MK_DET=500 VARS="fixed:|fixed_v9p2:$V9 -DPROF=2|fixed_p2:-DPROF=2 -DPOLL1=0|fixed_p2s:-DPROF=2|fixed_tr:-DTRACE=1|fixed_v9:$V9"
bash docs/benchmarks/2026-12-03-h200-session32/call3/run.sh
