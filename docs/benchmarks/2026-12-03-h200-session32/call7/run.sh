#!/usr/bin/env bash
# Session 32 call 7: call 6's fix (PFX=1) holds (50 / 50) but costs 15 us a step (718.8 against 703.9; the engine 1,369).
# PFX=3 frees each slot one step later, after the next wait loop (the HMMAs that read it issued before): race-free
# by construction without a fence. Checked the same way, and timed against PFX=1 and the racy default, alternated.
V9="-DDGU=0 -DDHEAD=0 -DPOLL1=0 -DGRAB_AT=-1 -DATTACQ=0 -DNSLOT=11 -DACH=16"
export O=/tmp/c7 MK_DET=20 VARS="r_pfx3:$V9 -DPROF=2 -DPFX=3|b0_pfx3:-DPROF=2 -DPOLL1=0 -DPFX=3|best:|fix3:-DPFX=3|fix1:-DPFX=1|best_b:|fix3_b:-DPFX=3|fix3n11:-DPFX=3 -DNSLOT=11|fix3tr:-DPFX=3 -DTRACE=1"
bash docs/benchmarks/2026-12-03-h200-session32/call3/run.sh
