#!/usr/bin/env bash
# Session 31 call 5: TREC's merge as one batch of polls, POLL1 (one word a warp polled before the warp's full load), with
# DGU; each switch against v9, one trace, and the engine in the same call. Runner: call1/run.sh.
D=docs/benchmarks/2026-12-03-h200-session31; S9=$D/mk9/mk9.cu
O=/tmp/s31e VARS="c111:$S9: c011:$S9:-DTREC=0 c101:$S9:-DDGU=0 c001:$S9:-DTREC=0,-DDGU=0 v9:$S9:-DTREC=0,-DDGU=0,-DPOLL1=0 c110:$S9:-DPOLL1=0 c111tr:$S9:-DTRACE=1 c011tr:$S9:-DTREC=0,-DTRACE=1" \
  bash $D/call1/run.sh
