#!/usr/bin/env bash
# Session 20, call 3 (same machine right after call 2): the torch.compile peer's int4 / int8 rows; then the checks
# again if call 2's were cut by its limit.
set -uo pipefail
C=.carry/s20b; B=$C/trtforge; O=/tmp/s20c3; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp docs/benchmarks/2026-12-02-h200-session20/call3/run.sh $O/; tar czf ${OUT:-/tmp}/s20c3.tgz -C /tmp s20c3; }
trap fin EXIT
date -u > $O/env_peer.txt
PYTHONUNBUFFERED=1 timeout 390 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions int4 int8 --batch-sizes 1 8 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer_q.json > $O/torch_peer_q.log 2>&1; echo "peer q rc=$?"; grep -E "decode|Error|error" $O/torch_peer_q.log | tail -8; t
if [ "${RECHECK:-0}" = 1 ]; then CT=$(( 590 - $(date +%s) + T0 ))
  TRTFORGE_CHECKS=udown timeout $CT $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_udown.log 2>&1; echo "check rc=$?"; grep -E "PASS|FAIL|passed" $O/check_udown.log | cut -c1-160; t; fi
