#!/usr/bin/env bash
# Session 47 call 1: the L2 -> shared-memory probe (probe/l2probe.py), then session 46's prepared next/run_a.sh.
mkdir -p $OUT/r; timeout 60 python3 docs/benchmarks/2026-12-05-h200-session47/probe/l2probe.py $OUT/r/l2probe.json 2>&1 | tail -30
bash docs/benchmarks/2026-12-05-h200-session46/next/run_a.sh
