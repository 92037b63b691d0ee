#!/usr/bin/env bash
# Session 31 call 6: L2 prefetch of each block's first gate/up chunks at the start of the qkv -> attention -> o stretch
# (PFG; with DGU the tiles are taken early by ticket, PFT a block), static and dynamic gate/up. TREC is now off by
# default (call 5: a loss). Runner: call1/run.sh.
D=docs/benchmarks/2026-12-03-h200-session31; S9=$D/mk9/mk9.cu
O=/tmp/s31f NOENG=1 VARS="d0:$S9: d8:$S9:-DPFG=8 d16:$S9:-DPFG=16,-DPFT=4 s8:$S9:-DPFG=8,-DDGU=0 s16:$S9:-DPFG=16,-DDGU=0 v9:$S9:-DDGU=0,-DPOLL1=0 d0p2:$S9:-DPROF=2 d8tr:$S9:-DPFG=8,-DTRACE=1 s16tr:$S9:-DPFG=16,-DDGU=0,-DTRACE=1" \
  bash $D/call1/run.sh
