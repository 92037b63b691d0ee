#!/usr/bin/env bash
# Session 44 call 1 (session 43's run_f.sh without the 5745f20 profile, plus the peer). carry [".carry/z"]:
# s44.tgz = the stripped release binary of 6dfae2e (CUDA sources = d3f46ea's) + its NVRTC cache (fp16/int4/int8/fp8
# bs64 and the tiny paged kernels, precompiled on the build machine with NVRTC 13.0).
#  0. cuda-check --tiny tests/fixtures/tiny_llama --paged: checks 5-7 (log-probabilities, shaped tokens, prompt
#     log-probabilities vs CPU). If they pass, CudaPagedBackend::supports_logprobs / supports_shaping may be true.
#  1. bs64 prompt 512: fp8, fp16, int4 (twice around the shapes), int8; TRTFORGE_WQ_SHAPE down:8x3 / gateup:1x3.
#  2. peer: scripts/torch_baseline.py fp16 bs1 and bs64.
#  3. ncu: every kernel of the last int4 bs64 decode step (prompt 64) of the default path, alone.
set -uo pipefail
mkdir -p /tmp/cz && tar xzf .carry/z/s44.tgz -C /tmp/cz || exit 3
gunzip -f /tmp/cz/s44/trtforge.gz; chmod +x /tmp/cz/s44/trtforge
B=/tmp/cz/s44/trtforge; K=/tmp/cz/s44/K
R=$OUT/r1; mkdir -p $R; export LD_LIBRARY_PATH=/usr/local/cuda/lib64
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
TRTFORGE_CACHE_DIR=$K timeout 200 $B cuda-check --tiny tests/fixtures/tiny_llama --paged > $R/check_paged.log 2>&1
echo "check_paged rc=$? $(t)"; grep -E "PASS|FAIL|passed|failed|rror" $R/check_paged.log | cut -c1-220 | tail -30
bn() { # name precision batches [env...]
  local n=$1 p=$2 bs=$3; shift 3
  env "$@" TRTFORGE_CACHE_DIR=$K timeout 90 $B bench --isolate never --model preset:tinyllama-1.1b \
    --precisions $p --batch-sizes $bs --input-lens 512 --output-len 128 --json $R/$n.json > $R/$n.log 2>&1
  echo "$n rc=$? $(t)"; grep -E '^\| (fp|int)|rror|compil' $R/$n.log | cut -c1-160; }
bn i4a int4 64 X=1
bn f8 fp8 64 X=1
bn f16 fp16 1,64 X=1
bn i8 int8 64 X=1
bn i4_d8 int4 64 TRTFORGE_WQ_SHAPE=down:8x3
bn i4_gu1x3 int4 64 TRTFORGE_WQ_SHAPE=gateup:1x3
bn i4b int4 64 X=1
PYTHONUNBUFFERED=1 timeout 150 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 64 \
  --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $R/torch_peer_fp16.json > $R/torch_peer_fp16.log 2>&1
echo "peer rc=$? $(t)"; grep -E "decode|rror" $R/torch_peer_fp16.log | tail -3
TRTFORGE_CACHE_DIR=$K timeout 100 ncu --clock-control none --cache-control none \
  --metrics gpu__time_duration.sum,dram__bytes_read.sum,launch__registers_per_thread,sm__throughput.avg.pct_of_peak_sustained_elapsed \
  --csv --page raw --print-units base $B bench --isolate never \
  --model preset:tinyllama-1.1b --precisions int4 --batch-sizes 64 --input-lens 64 --output-len 2 --runs 1 --warmup 0 \
  > /tmp/ncu_main.csv 2> $R/ncu_main.err
echo "ncu rc=$? $(t) lines $(wc -l < /tmp/ncu_main.csv)"; tail -2 $R/ncu_main.err | cut -c1-200; gzip -c /tmp/ncu_main.csv > $R/ncu_main.csv.gz
python3 docs/benchmarks/2026-12-05-h200-session41/call3/summarize.py /tmp/ncu_main.csv 2>&1 | head -60
t
