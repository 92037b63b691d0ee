#!/usr/bin/env bash
# Session 31 call 4: v9 + tagged attention records merged by the kv head's last chunk (TREC) + gate/up tiles by ticket
# (DGU), each alone and together, the trace of both, and 12 ring slots. Runner: call1/run.sh.
D=docs/benchmarks/2026-12-03-h200-session31; S9=$D/mk9/mk9.cu
O=/tmp/s31d NOENG=1 VARS="v9b:$S9: v9trec:$S9:-DDGU=0 v9:$S9:-DTREC=0,-DDGU=0 v9btr:$S9:-DTRACE=1 v9bs12:$S9:-DNSLOT=12 v9trectr:$S9:-DDGU=0,-DTRACE=1" \
  bash $D/call1/run.sh
