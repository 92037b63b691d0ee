#!/usr/bin/env bash
# Session 18, call 4 (final lease, part 2): the torch.compile peer (scripts/torch_baseline.py) right after call 3.
set -uo pipefail
O=/tmp/s18c4; mkdir -p $O
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp docs/benchmarks/2026-12-02-h200-session18/call4/run.sh $O/; tar czf ${OUT:-/tmp}/s18c4.tgz -C /tmp s18c4; }
trap fin EXIT
date -u > $O/env_peer.txt; python3 -c "import torch;print('torch',torch.__version__)" >> $O/env_peer.txt
PYTHONUNBUFFERED=1 timeout 330 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 8 16 32 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer_fp16.json > $O/torch_peer_fp16.log 2>&1; echo "peer fp16 rc=$?"; grep -E "decode|Error|error" $O/torch_peer_fp16.log | tail -12; t
PT=$(( 580 - $(date +%s) + T0 )); echo "peer budget $PT s"
PYTHONUNBUFFERED=1 timeout $PT python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions int4 int8 --batch-sizes 1 8 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer_q.json > $O/torch_peer_q.log 2>&1; echo "peer q rc=$?"; grep -E "decode|Error|error" $O/torch_peer_q.log | tail -12; t
