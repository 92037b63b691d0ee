#!/usr/bin/env bash
# Session 31 call 9: two rings (DRING: qkv / o through NSA slots with their own loader lane, the streaming ops through the
# rest) on call 8's best (GRAB_AT=1, ATTACQ=1), ring sizes, and a trace. Runner: call1/run.sh.
D=docs/benchmarks/2026-12-03-h200-session31; S9=$D/mk9/mk9.cu; B="-DGRAB_AT=1,-DATTACQ=1"
O=/tmp/s31i NOENG=1 VARS="b:$S9:$B b12:$S9:$B,-DNSLOT=12 r4:$S9:$B,-DDRING=1,-DNSA=4 r5x12:$S9:$B,-DDRING=1,-DNSA=5,-DNSLOT=12 r6x12:$S9:$B,-DDRING=1,-DNSA=6,-DNSLOT=12 r8x12:$S9:$B,-DDRING=1,-DNSA=8,-DNSLOT=12 r5x12tr:$S9:$B,-DDRING=1,-DNSA=5,-DNSLOT=12,-DTRACE=1" \
  bash $D/call1/run.sh
