#!/usr/bin/env bash
# Prepared in session 51 for the next lease (carry [".carry/z"]: s51c.tgz = `LINEINFO=1 bash scripts/gpu_carry.sh
# s51c` at c10af23 — the self-test with cold times, the K-split sweep and cuBLASLt f16 as the comparator, which
# no GPU has run yet). Priority order;
# DL=SECONDS (default 540) ends it sooner; what is under $R comes back even when the call is cut.
#  1. `TRTFORGE_CHECKS=wqk`: every case hot (weights in L2) and cold (from HBM), and at 64 rows every K split —
#     is a wq launch's ≈ 6 µs at qkv / o a fixed cost (launch, first stage's latency, cluster epilogue) or per stage,
#     and where does wq beat cuBLASLt on the f16 copy once both read from HBM (qkv / o stay on the latter today)?
#  2. ncu --set full --import-source yes of layer 0's four wq launches with every layer linear on wq (TRTFORGE_WQ=1:
#     qkv / o / gate/up / down), exported as CSV here (details, raw, and the SASS source page);
#  3. int4 bs64 default and TRTFORGE_WQ=1, fp16 bs64, the peer fp16 bs64;
#  4. bs1 rows (fp16 / int8 / int4) and the peer fp16 bs1 — last measured against the peer in session 46.
NAME=s51c . scripts/gpu_bench_lib.sh
DL=${DL:-540}
left() { echo $(( DL - ($(date +%s) - T0) )); }
timeout 90 env TRTFORGE_CHECKS=wqk $B cuda-check --tiny tests/fixtures/tiny_llama > $R/wqk.log 2>&1
echo "wqk rc=$? $(t)"; grep -E "  wq |PASS|FAIL|rror|passed" $R/wqk.log | cut -c1-170
timeout 100 env TRTFORGE_WQ=1 TRTFORGE_NVRTC_LINEINFO=1 ncu --set full --import-source yes --kernel-name regex:wq_i4 \
  --launch-count 4 -o $R/wq_layer0 $B bench --isolate never --model preset:tinyllama-1.1b --precisions int4 \
  --batch-sizes 64 --input-lens 64 --output-len 2 --runs 1 --warmup 0 > $R/ncu_wq.log 2>&1
echo "ncu rc=$? $(t)"; tail -2 $R/ncu_wq.log | cut -c1-160
if [ -f $R/wq_layer0.ncu-rep ]; then
  ncu --import $R/wq_layer0.ncu-rep --page details --csv > $R/wq_details.csv 2> $R/wq_ncu.err
  ncu --import $R/wq_layer0.ncu-rep --page raw --csv > $R/wq_raw.csv 2>> $R/wq_ncu.err
  ncu --import $R/wq_layer0.ncu-rep --page source --csv --print-source sass 2>> $R/wq_ncu.err | gzip > $R/wq_source.csv.gz
  echo "export $(t)"; grep -E '"(Duration|Warp Cycles Per Issued Instruction)"' $R/wq_details.csv | cut -c1-200
  rm -f $R/wq_layer0.ncu-rep  # the CSVs come back; the report is large
fi
bn i4_64 int4 64 X=1
bn i4_64_all int4 64 TRTFORGE_WQ=1
bn f16_64 fp16 64 X=1
if [ $(left) -gt 150 ]; then
  PYTHONUNBUFFERED=1 timeout 140 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 \
    --batch-sizes 1 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill \
    --out $R/torch_peer.json > $R/torch_peer.log 2>&1
  echo "peer rc=$? $(t)"; grep -E "decode|rror" $R/torch_peer.log | tail -4
fi
for p in fp16 int8 int4; do
  [ $(left) -gt 40 ] && bn ${p}_1 $p 1 X=1
done
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
