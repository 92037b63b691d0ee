#!/usr/bin/env bash
# Prepared in session 41 (NOT RUN; ≈ 330 s + start): what call 3 could not reach. carry [".carry/z"] (s41.tgz = main
# d3f46ea, whose CUDA sources are every later commit's of session 41; s39.tgz = 5745f20 for the SW profile).
#  1. fp8 bs64 default beside fp16 (#15's 1.3×; call 2's 1.088× was on 5745f20, 1.5 % slower than main for int4).
#  2. Shorter per-CTA chains without a rebuild (TRTFORGE_WQ_SHAPE, checked at load): down in 8 K slices, gate/up with
#     4 ring slots kept but 1 slice (the default) vs 3 slots.
#  3. ncu: every kernel of the last int4 bs64 decode step alone (prompt 64), main's default, then 5745f20 with SW —
#     where a layer's ≈ 56 µs go now, and why SW lost 8 %. Summarise with ../call3/summarize.py out/ncu_*.csv.
# If .carry/z/s41.tgz is gone (it is git-ignored): cargo build --release, then
#   mkdir -p /tmp/s41c/s41/K && strip -o /tmp/s41c/s41/trtforge target/release/trtforge
#   for p in fp16 int4 int8 fp8; do LD_LIBRARY_PATH=<CUDA 13 NVRTC lib> TRTFORGE_CACHE_DIR=/tmp/s41c/s41/K \
#     TRTFORGE_CUDA_PRECOMPILE=sm_90 target/release/trtforge bench --isolate never --model preset:tinyllama-1.1b \
#     --precisions $p --batch-sizes 64 --input-lens 512 --output-len 128; done      # "kernels ... cached" is the success
#   gzip /tmp/s41c/s41/trtforge && tar czf .carry/z/s41.tgz -C /tmp/s41c s41   (drop the s39 lines without s39.tgz)
# Results land in $OUT/rd as they come (a cut call still returns them); the tool returns at most 8 files: the logs
# and JSON are packed into one tarball per step.
set -uo pipefail
S=${S:-s41}   # the main binary's carry (session 42's run_e.sh passes S=s42)
mkdir -p /tmp/cz; for s in s39 $S; do tar xzf .carry/z/$s.tgz -C /tmp/cz || exit 3; gunzip -f /tmp/cz/$s/trtforge.gz; chmod +x /tmp/cz/$s/trtforge; done
R=/tmp/rd; mkdir -p $R $OUT/rd; export LD_LIBRARY_PATH=/usr/local/cuda/lib64
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
pack() { tar czf $OUT/rd/$1.tgz -C /tmp rd; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
bn() { # name binary precision batches [env...]
  local n=$1 s=$2 p=$3 bs=$4; shift 4
  env "$@" TRTFORGE_CACHE_DIR=/tmp/cz/$s/K timeout 80 /tmp/cz/$s/trtforge bench --isolate never --model preset:tinyllama-1.1b \
    --precisions $p --batch-sizes $bs --input-lens 512 --output-len 128 --json $R/$n.json > $R/$n.log 2>&1
  echo "$n rc=$? $(t)"; grep -E '^\| (fp|int)|rror|compil' $R/$n.log | cut -c1-140; }
bn f8 $S fp8 64 X=1
bn f16 $S fp16 64 X=1
bn i4 $S int4 64 X=1
bn i4_d8 $S int4 64 TRTFORGE_WQ_SHAPE=down:8x3
bn i4_gu1x3 $S int4 64 TRTFORGE_WQ_SHAPE=gateup:1x3
bn i4_b $S int4 64 X=1
pack bench
nc() { # name binary [env...]
  local n=$1 s=$2; shift 2
  env "$@" TRTFORGE_CACHE_DIR=/tmp/cz/$s/K timeout 80 ncu --clock-control none --cache-control none \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,launch__registers_per_thread \
    --csv --page raw --print-units base /tmp/cz/$s/trtforge bench --isolate never \
    --model preset:tinyllama-1.1b --precisions int4 --batch-sizes 64 --input-lens 64 --output-len 2 --runs 1 --warmup 0 \
    > $R/ncu_$n.csv 2> $R/ncu_$n.err
  echo "ncu $n rc=$? $(t) lines $(wc -l < $R/ncu_$n.csv)"; tail -2 $R/ncu_$n.err | cut -c1-200; }
nc main $S X=1
pack ncu1
nc sw s39 TRTFORGE_WQ_SWIGLU=1
pack ncu2
t
