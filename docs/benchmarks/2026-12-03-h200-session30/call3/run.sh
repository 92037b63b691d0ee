#!/usr/bin/env bash
# Session 30 call 3: megakernel probe v3 (MMA=1: tensor-core chunk reduction, chunks in A-fragment order, x as f16) —
# the call-2 script with two more variants (16 and 4 consumer warps).
EXTRA="ncw16:-DNCW=16 ncw4:-DNCW=4" bash docs/benchmarks/2026-12-03-h200-session30/call2/run.sh
