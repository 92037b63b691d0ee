#!/usr/bin/env bash
# Session 31 call 7: knobs on the best so far (c011 = defaults: DGU + POLL1, TREC off): when the loader takes its next
# gate/up ticket (GRAB_AT), POLL1 for the act staging only (POLL1MIN=16), DGU without POLL1, the attention's P.V with four
# accumulators (AP4), its count as one acq_rel atomic (ATTACQ). Runner: call1/run.sh.
D=docs/benchmarks/2026-12-03-h200-session31; S9=$D/mk9/mk9.cu
O=/tmp/s31g NOENG=1 VARS="d0:$S9: g1:$S9:-DGRAB_AT=1 g2:$S9:-DGRAB_AT=2 pm16:$S9:-DPOLL1MIN=16 np1:$S9:-DPOLL1=0 ap4:$S9:-DAP4=1 acq:$S9:-DATTACQ=1 all:$S9:-DGRAB_AT=1,-DAP4=1,-DATTACQ=1,-DPOLL1MIN=16" \
  bash $D/call1/run.sh
