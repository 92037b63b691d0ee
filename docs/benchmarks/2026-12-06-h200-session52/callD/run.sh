#!/usr/bin/env bash
# Session 52, call D (carry s51c = `LINEINFO=1 bash scripts/gpu_carry.sh s51c` at c10af23, whose src/ is this session's
# final src/: df01475 was reverted): the rest of #11 / #15's table on the final code beside the peer in one lease —
# bs8 every precision, fp8 and int8 bs1, the SmolLM2 shape at bs1, and the peer's fp16 / int8 / int4 at bs 1 and 8.
NAME=s51c . scripts/gpu_bench_lib.sh
DL=${DL:-470}
left() { echo $(( DL - ($(date +%s) - T0) )); }
for p in fp16 int8 int4 fp8; do bn ${p}_8 $p 8 X=1; done
bn fp8_1 fp8 1 X=1
bn int8_1 int8 1 X=1
timeout 80 $B bench --isolate never --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 \
  --output-len 128 --json $R/smol_1.json > $R/smol_1.log 2>&1
echo "smol_1 rc=$? $(t)"; grep -E '^\| (fp|int)|rror|compil' $R/smol_1.log | cut -c1-140
for p in fp16 int4 int8; do
  if [ $(left) -gt 90 ]; then
    PYTHONUNBUFFERED=1 timeout $(( $(left) - 20 )) python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions $p \
      --batch-sizes 1 8 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill \
      --out $R/torch_peer_$p.json > $R/torch_peer_$p.log 2>&1
    echo "peer $p rc=$? $(t)"; grep -E "decode|rror" $R/torch_peer_$p.log | tail -3
  fi
done
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
