#!/usr/bin/env bash
# Session 31 call 3: v9's trace (TRACE: per block, op and layer, globaltimer stamps of one launch; 5 launches) and the
# two-rounds-in-flight staging poll (PPOLL). Runner: call1/run.sh.
D=docs/benchmarks/2026-12-03-h200-session31; S9=$D/mk9/mk9.cu
O=/tmp/s31c NOENG=1 VARS="v9:$S9: v9tr:$S9:-DTRACE=1 v9pp:$S9:-DPPOLL=1 v9pptr:$S9:-DPPOLL=1,-DTRACE=1" bash $D/call1/run.sh
