#!/usr/bin/env bash
# Session 31 call 10: qkv tiles (DQKV) and the head's tiles (DHEAD) by ticket as gate/up's, on call 8's best (GRAB_AT=1,
# ATTACQ=1), with 12 ring slots, and a trace. Runner: call1/run.sh.
D=docs/benchmarks/2026-12-03-h200-session31; S9=$D/mk9/mk9.cu; B="-DGRAB_AT=1,-DATTACQ=1"
O=/tmp/s31j NOENG=1 VARS="b:$S9:$B q:$S9:$B,-DDQKV=1 h:$S9:$B,-DDHEAD=1 qh:$S9:$B,-DDQKV=1,-DDHEAD=1 qh12:$S9:$B,-DDQKV=1,-DDHEAD=1,-DNSLOT=12 qhtr:$S9:$B,-DDQKV=1,-DDHEAD=1,-DTRACE=1" \
  bash $D/call1/run.sh
