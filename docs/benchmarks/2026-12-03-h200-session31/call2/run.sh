#!/usr/bin/env bash
# Session 31 call 2: v9's determinism (step 1 three more times, bitwise), its run-level profile, its streaming ceiling
# (NOWAIT), and knobs: attention chunks a kv head, partial buffers, ring slots. Runner: call1/run.sh.
D=docs/benchmarks/2026-12-03-h200-session31; S9=$D/mk9/mk9.cu
O=/tmp/s31b NOENG=1 VARS="v9:$S9: v9prof:$S9:-DPROF=1 v9nw:$S9:-DNOWAIT=1 v9a8:$S9:-DACH=8,-DXAREA=26624 v9a32:$S9:-DACH=32 v9pb8:$S9:-DNPB=8 v9s12:$S9:-DNSLOT=12 v9ew0:$S9:-DEW=0,-DNPB=2" \
  bash $D/call1/run.sh
