#!/usr/bin/env bash
# Session 31 call 8: GRAB_AT=-1 fixed (call 7's -1 builds took a second ticket at chunk 0 and crashed); on GRAB_AT=1 each
# of AP4 / ATTACQ / POLL1MIN=16 / POLL1=0, all together, its trace, and the engine in the same call. Runner: call1/run.sh.
D=docs/benchmarks/2026-12-03-h200-session31; S9=$D/mk9/mk9.cu
O=/tmp/s31h VARS="d0:$S9: g1:$S9:-DGRAB_AT=1 g1ap4:$S9:-DGRAB_AT=1,-DAP4=1 g1acq:$S9:-DGRAB_AT=1,-DATTACQ=1 g1pm16:$S9:-DGRAB_AT=1,-DPOLL1MIN=16 g1np1:$S9:-DGRAB_AT=1,-DPOLL1=0 all:$S9:-DGRAB_AT=1,-DAP4=1,-DATTACQ=1,-DPOLL1MIN=16 alltr:$S9:-DGRAB_AT=1,-DAP4=1,-DATTACQ=1,-DPOLL1MIN=16,-DTRACE=1" \
  bash $D/call1/run.sh
