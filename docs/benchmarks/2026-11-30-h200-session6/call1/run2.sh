#!/usr/bin/env bash
# Lead's final lease (session 6), call 2 (right after call 1, same machine): the gpt-fast-style
# torch.compile peer, then the TinyLlama fp8 checks if time is left. One tar: $OUT/peer6.tgz.
set -uo pipefail
C=.carry/final6; B=$C/trtforge; O=/tmp/f6p; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
trap 'tar czf ${OUT:-/tmp}/peer6.tgz -C /tmp f6p' EXIT
date -u > $O/env_peer.txt; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader >> $O/env_peer.txt; python3 -c "import torch;print('torch',torch.__version__)" >> $O/env_peer.txt
PYTHONUNBUFFERED=1 timeout ${PEER_T:-280} python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions ${PEER_PRECS:-fp16 int8 int4} --batch-sizes 1 8 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer.json > $O/torch_peer.log 2>&1; echo "rc=$?"; grep -E "decode|Error|error" $O/torch_peer.log | tail -12; t
if [ -n "${FP8TL_T:-}" ]; then TRTFORGE_CHECKS=fp8tl timeout $FP8TL_T $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_fp8tl.log 2>&1; echo rc=$?; grep -E "FAIL|passed" $O/check_fp8tl.log | tail -4; t; fi
