#!/usr/bin/env bash
# Session 19, call 6 (final lease, part 2, same machine right after call 5): the torch.compile peer's int4 / int8 rows.
set -uo pipefail
O=/tmp/s19c6; mkdir -p $O
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp docs/benchmarks/2026-12-02-h200-session19/call6/run.sh $O/; tar czf ${OUT:-/tmp}/s19c6.tgz -C /tmp s19c6; }
trap fin EXIT
date -u > $O/env_peer.txt
PYTHONUNBUFFERED=1 timeout 390 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions int4 int8 --batch-sizes 1 8 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer_q.json > $O/torch_peer_q.log 2>&1; echo "peer q rc=$?"; grep -E "decode|Error|error" $O/torch_peer_q.log | tail -8; t
