#!/usr/bin/env bash
# Session 30 call 6: (1) how the probe's step depends on the ring's run-ahead (NSLOT 4 / 6 / 8 / 11 / 13 slots of 16 KB;
# 13 needs the x area cut to 16 KB and 16 attention chunks a kv head, measured alone at 11 slots too), v4 kernel (AKV=0,
# ROT=0); (2) v7 FG=1: o split-K by kv head and down split-K by column range, each entry waiting for its own input only.
# The call-4 script with other variants.
B=-DAKV=0,-DROT=0
VARS="fg:mk:$B,-DFG=1 s11:mk:$B fgprof:mk:$B,-DFG=1,-DPROF=1 s4:mk:$B,-DNSLOT=4 s6:mk:$B,-DNSLOT=6 s8:mk:$B,-DNSLOT=8 a16:mk:$B,-DACH=16,-DXAREA=16384 s13:mk:$B,-DACH=16,-DXAREA=16384,-DNSLOT=13 fgs13:mk:$B,-DFG=1,-DACH=16,-DXAREA=16384,-DNSLOT=13 s4prof:mk:$B,-DNSLOT=4,-DPROF=1" \
  bash docs/benchmarks/2026-12-03-h200-session30/call4/run.sh
