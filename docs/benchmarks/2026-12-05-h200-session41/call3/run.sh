#!/usr/bin/env bash
# Session 41 call 3. carry [".carry/z"] (s39.tgz: 5745f20 with the epilogue switches; s41.tgz: main after their
# removal, every CUDA source = session 38's 4c9b6cc), run: bash <this file>.
#  1. bs64 prompt 512: main's default vs 5745f20's default (int4: main, 5745f20, main), int8 / fp8 / fp16 on main; peer.
#     (Is 5745f20's default ≈ 1 % slower than session 38's, as calls 1–2 hint: its wq kernel carries the epilogue
#     modes as run-time arguments.)
#  2. int4 bs64 on main with gate/up split in 2 K slices (3 / 4 ring slots) and down in 8 (TRTFORGE_WQ_SHAPE).
#  3. ncu: every kernel of the last int4 bs64 decode step (prompt 64: a short prefill to profile) alone (ncu serializes: no PDL overlap), 5745f20 default vs
#     SW (TRTFORGE_WQ_SWIGLU=1) — why SW lost 8 %.
set -uo pipefail
mkdir -p /tmp/cz; for s in s39 s41; do tar xzf .carry/z/$s.tgz -C /tmp/cz || exit 3; gunzip -f /tmp/cz/$s/trtforge.gz; chmod +x /tmp/cz/$s/trtforge; done
R=$OUT/r3; mkdir -p $R; export LD_LIBRARY_PATH=/usr/local/cuda/lib64
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
bn() { # name binary precision batches [env...]
  local n=$1 s=$2 p=$3 bs=$4; shift 4
  env "$@" TRTFORGE_CACHE_DIR=/tmp/cz/$s/K timeout 80 /tmp/cz/$s/trtforge bench --isolate never --model preset:tinyllama-1.1b \
    --precisions $p --batch-sizes $bs --input-lens 512 --output-len 128 --json $R/$n.json > $R/$n.log 2>&1
  echo "$n rc=$? $(t)"; grep -E '^\| (fp|int)|rror|compil' $R/$n.log | cut -c1-140; }
# In priority order (the call may be cut by the device budget; what ran is in $OUT).
bn m_i4a s41 int4 64 X=1
bn m_f16 s41 fp16 1,64 X=1
PYTHONUNBUFFERED=1 timeout 80 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 \
  --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $R/torch_peer_fp16.json > $R/torch_peer_fp16.log 2>&1
echo "peer rc=$? $(t)"; grep -E "decode|rror" $R/torch_peer_fp16.log | tail -2
# gate/up's 176 tiles on 132 SMs in one K slice (44 SMs do two): split K (TRTFORGE_WQ_SHAPE, checked at load).
bn m_i4_gu2x3 s41 int4 64 TRTFORGE_WQ_SHAPE=gateup:2x3
bn o_i4a s39 int4 64 X=1
bn m_i4b s41 int4 64 X=1
bn m_i8 s41 int8 64 X=1
bn m_f8 s41 fp8 64 X=1
bn m_i4_gu2x4 s41 int4 64 TRTFORGE_WQ_SHAPE=gateup:2x4
bn m_i4_d8 s41 int4 64 TRTFORGE_WQ_SHAPE=down:8x3
nc() { # name [env...]
  local n=$1; shift
  env "$@" TRTFORGE_CACHE_DIR=/tmp/cz/s39/K timeout 80 ncu --clock-control none --cache-control none \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,launch__registers_per_thread \
    --csv --page raw --print-units base /tmp/cz/s39/trtforge bench --isolate never \
    --model preset:tinyllama-1.1b --precisions int4 --batch-sizes 64 --input-lens 64 --output-len 2 --runs 1 --warmup 0 \
    > /tmp/ncu_$n.csv 2> $R/ncu_$n.err
  echo "ncu $n rc=$? $(t) lines $(wc -l < /tmp/ncu_$n.csv)"; tail -2 $R/ncu_$n.err | cut -c1-200; gzip -c /tmp/ncu_$n.csv > $R/ncu_$n.csv.gz; }
# (results land in $OUT as they come: a call cut by its limit still returns what ran)
nc gd X=1
nc sw TRTFORGE_WQ_SWIGLU=1
t
