#!/usr/bin/env bash
# Session 38 call 3: the quantized decode GEMM as the default on cc 9.0 (wq::Mode::Default: gate/up and down only,
# int4 g128 from 9 rows, int8 / fp8 from 33 rows), against TRTFORGE_WQ=0 (the f16 copy through cuBLASLt) in the same
# lease: int4 / fp8 / int8 at bs16 / 32 / 64 (prompt 512, 128 new; one process per precision and switch), fp16 bs1 / 64
# and the peer's fp16 bs1; then, side by side (CPU-reference bound), the paged list `TRTFORGE_CHECKS=wqp` (TinyLlama
# int4 g128 and int8 through the block tables, 64 sequences) with the default and with TRTFORGE_WQ=0.
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/s38.tgz -C /tmp/cz || exit 3
gunzip -f /tmp/cz/s38/trtforge.gz && chmod +x /tmp/cz/s38/trtforge
C=/tmp/cz/s38; B=$C/trtforge; R=/tmp/c3; mkdir -p $R
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=$C/K
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
trap "tar czf $OUT/c3.tgz -C /tmp c3" EXIT
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; cat $C/commit.txt; sha256sum $B; } | tee $R/env.txt
bn() { # name precision batches [env...]
  local n=$1 p=$2 bs=$3; shift 3
  env "$@" timeout 80 $B bench --isolate never --model preset:tinyllama-1.1b --precisions $p --batch-sizes $bs --input-lens 512 --output-len 128 --json $R/$n.json > $R/$n.log 2>&1
  echo "$n rc=$? $(t)"; grep -E '^\| (fp|int)|rror' $R/$n.log | cut -c1-120; }
bn i4 int4 16,32,64 X=1
bn i4_off int4 16,32,64 TRTFORGE_WQ=0
bn f8 fp8 16,32,64 X=1
bn f8_off fp8 16,32,64 TRTFORGE_WQ=0
bn i8 int8 16,32,64 X=1
bn i8_off int8 16,32,64 TRTFORGE_WQ=0
bn f16 fp16 1,64 X=1
PYTHONUNBUFFERED=1 timeout 80 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $R/torch_peer_fp16.json > $R/torch_peer_fp16.log 2>&1
echo "peer rc=$? $(t)"; grep -E "decode|rror" $R/torch_peer_fp16.log | tail -2
L=$(( 560 - $(date +%s) + T0 )); echo "checks get ${L} s"
( TRTFORGE_CHECKS=wqp timeout $L $B cuda-check --tinyllama --paged > $R/check_wqp.log 2>&1; echo "check wqp (default) rc=$? $(t)" > $R/wqp.rc ) &
( TRTFORGE_WQ=0 TRTFORGE_CHECKS=wqp timeout $L $B cuda-check --tinyllama --paged > $R/check_wqp0.log 2>&1; echo "check wqp (TRTFORGE_WQ=0) rc=$? $(t)" > $R/wqp0.rc ) &
wait
cat $R/wqp.rc; grep -E "PASS|FAIL|passed|rror" $R/check_wqp.log | cut -c1-300
cat $R/wqp0.rc; grep -E "PASS|FAIL|passed|rror" $R/check_wqp0.log | cut -c1-300
t
