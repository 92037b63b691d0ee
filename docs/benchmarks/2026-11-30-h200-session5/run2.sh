#!/usr/bin/env bash
# Lead's final lease (session 5), call 2 (right after call 1, same machine): the gpt-fast-style torch.compile peer.
set -uo pipefail
O=/tmp/f5p; mkdir -p $O
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
trap 'tar czf ${OUT:-/tmp}/peer5.tgz -C /tmp f5p' EXIT
date -u > $O/env_peer.txt; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader >> $O/env_peer.txt; python3 -c "import torch;print('torch',torch.__version__)" >> $O/env_peer.txt
PYTHONUNBUFFERED=1 timeout ${PEER_T:-280} python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions ${PEER_PRECS:-fp16 int8 int4} --batch-sizes 1 8 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer.json > $O/torch_peer.log 2>&1; echo "rc=$?"; grep -E "decode|Error|error" $O/torch_peer.log | tail -12; t
