#!/usr/bin/env bash
# Session 31 call 14: the best variant's streaming ceiling (NOWAIT: readers take the first value they load) and its
# run-level profile (PROF=1). Runner: call1/run.sh.
D=docs/benchmarks/2026-12-03-h200-session31; S9=$D/mk9/mk9.cu; B="-DGRAB_AT=1,-DATTACQ=1,-DDHEAD=1,-DNSLOT=12,-DACH=20"
O=/tmp/s31n NOENG=1 VARS="best:$S9:$B bestnw:$S9:$B,-DNOWAIT=1 bestprof:$S9:$B,-DPROF=1" bash $D/call1/run.sh
