#!/usr/bin/env bash
# Session 31 call 11: on call 8's best (GRAB_AT=1, ATTACQ=1): attention chunks a kv head 12 / 20 / 24, the next gate/up
# ticket after chunk 0, and DHEAD with 12 ring slots. Runner: call1/run.sh.
D=docs/benchmarks/2026-12-03-h200-session31; S9=$D/mk9/mk9.cu; B="-DGRAB_AT=1,-DATTACQ=1"
O=/tmp/s31k NOENG=1 VARS="b:$S9:$B a12:$S9:$B,-DACH=12,-DXAREA=18432 a20:$S9:$B,-DACH=20 a24:$S9:$B,-DACH=24 g0:$S9:-DGRAB_AT=0,-DATTACQ=1 hs12:$S9:$B,-DDHEAD=1,-DNSLOT=12 b2:$S9:$B" \
  bash $D/call1/run.sh
