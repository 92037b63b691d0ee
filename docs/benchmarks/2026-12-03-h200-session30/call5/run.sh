#!/usr/bin/env bash
# Session 30 call 5: megakernel probe v6 (mk.cu: PFD — the loader's L2 prefetch cursor PFD chunks ahead of its ring
# copies; NOMMA diagnostic) with v5's AKV / ROT separated. The call-4 script with other variants.
VARS="base:mk:-DAKV=0,-DROT=0 rot:mk:-DAKV=0 akv:mk:-DROT=0 pf8:mk:-DAKV=0,-DROT=0,-DPFD=8 pf16:mk:-DAKV=0,-DROT=0,-DPFD=16 pf32:mk:-DAKV=0,-DROT=0,-DPFD=32 pf16prof:mk:-DAKV=0,-DROT=0,-DPFD=16,-DPROF=1 nommaprof:mk:-DAKV=0,-DROT=0,-DNOMMA=1,-DPROF=1 pf16nw:mk:-DAKV=0,-DROT=0,-DPFD=16,-DNOWAIT=1" \
  bash docs/benchmarks/2026-12-03-h200-session30/call4/run.sh
