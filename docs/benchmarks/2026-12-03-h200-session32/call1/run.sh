#!/usr/bin/env bash
# Prepared in session 31, NOT RUN (no device time left): bisect the race of README "Open: a race". Each build is the
# static-gate/up configuration that raced under per-chunk timers (PROF=2), run with 20 repeats of the first step
# (MK_DET=20) and printed as "k of 20 bitwise equal". Expected if the attention records are the cause: the plain PROF=2
# row below 20 / 20, the TREC=1 and RECFENCE=1 rows at 20 / 20. Then the same three on the best (default) configuration.
# Run from the repository root on the device machine (about 1 minute).
set -uo pipefail
D=docs/benchmarks/2026-12-03-h200-session31; S=$D/mk9/mk9.cu; O=/tmp/race; mkdir -p $O; export PATH=/usr/local/cuda/bin:$PATH
trap 'sha256sum $S > $O/sources.sha256; tar czf ${OUT:-/tmp}/race.tgz -C /tmp race' EXIT
V9="-DDGU=0 -DDHEAD=0 -DPOLL1=0 -DGRAB_AT=-1 -DATTACQ=0 -DNSLOT=11 -DACH=16"
VARS="p2:$V9 -DPROF=2|p2trec:$V9 -DPROF=2 -DTREC=1|p2rf:$V9 -DPROF=2 -DRECFENCE=1|plain:$V9|best_p2:-DPROF=2|best_p2rf:-DPROF=2 -DRECFENCE=1|best:"
IFS='|' read -ra VS <<< "$VARS"
for v in "${VS[@]}"; do n=${v%%:*}; f=${v#*:}; ( nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 $f $S -o /tmp/mk_$n > $O/build_$n.log 2>&1; echo "build $n rc=$?" ) & done; wait
for v in "${VS[@]}"; do n=${v%%:*}; MK_DET=20 timeout 120 /tmp/mk_$n > $O/mk_$n.log 2>&1; echo "$n rc=$? $(grep -E 'determinism|median' $O/mk_$n.log | tr '\n' ' ')"; done
