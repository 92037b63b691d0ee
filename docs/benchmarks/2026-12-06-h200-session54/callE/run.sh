#!/usr/bin/env bash
# Session 54 call E (no carry, no engine code): kvring.py — the decode attention's load structure without its math
# (cp.async ring / registers, warps × stages) on the same 33.6 MB, beside kvstream.py's plain reads in the same lease.
R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
d=docs/benchmarks/2026-12-06-h200-session54
timeout 120 python3 $d/callE/kvring.py $R/kvring.json > $R/kvring.log 2>&1; echo "kvring rc=$?"; cut -c1-160 $R/kvring.log
timeout 90 python3 $d/callD/kvstream.py $R/kvstream.json > $R/kvstream.log 2>&1; echo "kvstream rc=$?"
grep -E '"unroll": 4' $R/kvstream.log | cut -c1-160
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
