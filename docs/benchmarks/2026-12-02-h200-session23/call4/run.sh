#!/usr/bin/env bash
# Session 23 call 4 (the same lease as call 3, right after it; no carry): the torch.compile peer's int4 / int8 rows.
mkdir -p $OUT/q; date -u > $OUT/q/env.txt; PYTHONUNBUFFERED=1 timeout 370 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions int4 int8 --batch-sizes 1 8 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $OUT/q/torch_peer_q.json > $OUT/q/torch_peer_q.log 2>&1; echo rc=$?; grep -E "decode|Error|error" $OUT/q/torch_peer_q.log | tail -8
