#!/usr/bin/env bash
# Session 41 call 3: why the wq epilogues lost (calls 1-2). Nsight Compute, every kernel of the last int4 bs64 decode
# step alone (ncu serializes: no PDL overlap), default vs SW (TRTFORGE_WQ_SWIGLU=1) vs ALL (SW + ROPE + NORM, every
# linear on wq). Binary: session 39's 5745f20 (.carry/z/s39.tgz). run: carry [".carry/z"], bash <this file>.
. docs/benchmarks/2026-12-04-h200-session39/next/common.sh
R=/tmp/r3; mkdir -p $R
trap "tar czf $OUT/c3.tgz -C /tmp r3" EXIT
nc() { # name [env...]
  local n=$1; shift
  env "$@" timeout 105 ncu --clock-control none --cache-control none \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,launch__registers_per_thread,launch__grid_size \
    --csv --page raw --print-units base $B bench --isolate never \
    --model preset:tinyllama-1.1b --precisions int4 --batch-sizes 64 --input-lens 512 --output-len 2 --runs 1 --warmup 0 \
    > $R/ncu_$n.csv 2> $R/ncu_$n.err
  echo "ncu $n rc=$? $(t) lines $(wc -l < $R/ncu_$n.csv)"; tail -2 $R/ncu_$n.err | cut -c1-200; }
nc gd X=1
nc sw TRTFORGE_WQ_SWIGLU=1
nc all TRTFORGE_WQ_SWIGLU=1 TRTFORGE_WQ_ROPE=1 TRTFORGE_WQ_NORM=1 TRTFORGE_WQ_ROLES=qkv,o,gateup,down
t
