#!/usr/bin/env bash
# Session 53 call D (carry s53, the final kernels): where the bs64 step goes at prompt 512 on the H100 — every kernel
# of the last decode step under ncu with ONE metric (no replay; kernels run one at a time, so no PDL overlap), int4
# then fp16, summarized by session 41's summarize.py (session 46 measured this on the H200 at prompt 64 only).
DL=${DL:-420}
NAME=s53 . scripts/gpu_bench_lib.sh
prof() {  # prof NAME PRECISION TIMEOUT
  timeout $3 ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum \
    --csv --page raw --print-units base $B bench --isolate never --model preset:tinyllama-1.1b --precisions $2 \
    --batch-sizes 64 --input-lens 512 --output-len 2 --runs 1 --warmup 0 > /tmp/$1.csv 2> $R/$1.err
  echo "ncu $1 rc=$? $(t) lines $(wc -l < /tmp/$1.csv)"; tail -2 $R/$1.err | cut -c1-200
  gzip -c /tmp/$1.csv > $R/$1.csv.gz
  python3 docs/benchmarks/2026-12-05-h200-session41/call3/summarize.py /tmp/$1.csv 2>&1 | head -40 | cut -c1-200
}
prof ncu_i4 int4 220
[ $(left) -gt 120 ] && prof ncu_f16 fp16 $(( $(left) - 20 ))
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
