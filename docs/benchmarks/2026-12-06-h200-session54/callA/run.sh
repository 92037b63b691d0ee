#!/usr/bin/env bash
# Session 54 call A = session 53's prepared next/run.sh on carry s54 (`bash scripts/gpu_carry.sh s54` at aace01b;
# carry [".carry/z"]): cx12 vs cx8 at fp16 / int4 bs64, greedy smoke, cx12 check lists. (The call ran a copy of that
# script with the carry name changed; this runs the same commands.)
CARRY=s54 exec bash docs/benchmarks/2026-12-06-h200-session53/next/run.sh
