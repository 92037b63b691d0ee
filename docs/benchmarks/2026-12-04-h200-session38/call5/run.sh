#!/usr/bin/env bash
# Session 38 call 5 (the session's last 250 device seconds): each GEMM kernel's own GPU time in the int4 bs64 engine, by
# Nsight Compute (one metric, caches and clocks left alone, no PDL overlap), with qkv + o on the quantized decode GEMM
# (run A) and with gate/up + down on it (run B, the default) — so each of the four linears is seen both ways.
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/s38.tgz -C /tmp/cz || exit 3
gunzip -f /tmp/cz/s38/trtforge.gz && chmod +x /tmp/cz/s38/trtforge
C=/tmp/cz/s38; B=$C/trtforge; R=/tmp/c5; mkdir -p $R
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=$C/K
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
trap "tar czf $OUT/c5.tgz -C /tmp c5" EXIT
nc() { # name [env...]
  local n=$1; shift
  env "$@" timeout 75 ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv --page raw \
    --print-units base --kernel-name regex:"wq_|nvjet|gemm|xmma|cutlass" $B bench --isolate never \
    --model preset:tinyllama-1.1b --precisions int4 --batch-sizes 64 --input-lens 512 --output-len 2 --runs 1 --warmup 0 \
    > $R/ncu_$n.csv 2> $R/ncu_$n.err
  echo "ncu $n rc=$? $(t) lines $(wc -l < $R/ncu_$n.csv)"; tail -2 $R/ncu_$n.err | cut -c1-200; }
nc qo TRTFORGE_WQ_ROLES=qkv,o
nc gd X=1
t
