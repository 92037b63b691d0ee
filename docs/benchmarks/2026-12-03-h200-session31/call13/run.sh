#!/usr/bin/env bash
# Session 31 call 13: around call 12's best (GRAB_AT=1, ATTACQ=1, ACH=20, DHEAD=1, NSLOT=12): attention chunks 18 / 22,
# eight partial buffers, AP4, POLL1 off, and the best's trace. Runner: call1/run.sh.
D=docs/benchmarks/2026-12-03-h200-session31; S9=$D/mk9/mk9.cu; B="-DGRAB_AT=1,-DATTACQ=1,-DDHEAD=1,-DNSLOT=12"
O=/tmp/s31m NOENG=1 VARS="best:$S9:$B,-DACH=20 a18:$S9:$B,-DACH=18 a22:$S9:$B,-DACH=22 pb8:$S9:$B,-DACH=20,-DNPB=8 ap4:$S9:$B,-DACH=20,-DAP4=1 np1:$S9:$B,-DACH=20,-DPOLL1=0 besttr:$S9:$B,-DACH=20,-DTRACE=1" \
  bash $D/call1/run.sh
