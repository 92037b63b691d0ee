#!/usr/bin/env bash
# Session 32 call 8: call 7: PFX=3 (deferred free) is race-free but slower (726 us) than PFX=1 (714.5); the racy
# default 700.4. PFX=4: fence.acq_rel.cta alone (ptxas places its MEMBAR.ALL.CTA after the chunk's HMMAs, whose
# operands are the slot's LDS data): checked with 50 repeats in the racing builds and timed, alternated.
V9="-DDGU=0 -DDHEAD=0 -DPOLL1=0 -DGRAB_AT=-1 -DATTACQ=0 -DNSLOT=11 -DACH=16"
export O=/tmp/c8 MK_DET=20 VARS="r_pfx4:$V9 -DPROF=2 -DPFX=4|b0_pfx4:-DPROF=2 -DPOLL1=0 -DPFX=4|bp_pfx4:-DPROF=2 -DPFX=4|best:|fix4:-DPFX=4|fix1:-DPFX=1|best_b:|fix4_b:-DPFX=4|fix1_b:-DPFX=1|fix4tr:-DPFX=4 -DTRACE=1"
bash docs/benchmarks/2026-12-03-h200-session32/call3/run.sh
