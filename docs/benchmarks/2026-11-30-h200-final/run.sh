#!/usr/bin/env bash
# Final lease: correctness, trtforge roofline bench, gpt-fast-style torch peer — one lease.
set -uo pipefail
C=.carry/final; B=$C/trtforge; O=${OUT:-/tmp/out}; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; $B --version; python3 -c "import torch;print('torch',torch.__version__)"; } > $O/env.txt 2>&1; cat $O/env.txt
echo "== cuda-check"; timeout 100 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check.log 2>&1; grep -E "FAIL|passed" $O/check.log; t
echo "== trtforge bench (roofline mode)"; timeout 130 $B bench --model preset:tinyllama-1.1b --precisions fp16,int8,int4 --batch-sizes 1,8,64 --input-lens 512 --output-len 128 --json $O/trtforge_tinyllama.json > $O/trtforge_tinyllama.log 2>&1; cat $O/trtforge_tinyllama.log | tail -14; t
timeout 40 $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --json $O/trtforge_smollm2.json > $O/trtforge_smollm2.log 2>&1; tail -3 $O/trtforge_smollm2.log; t
echo "== torch peer"; PYTHONUNBUFFERED=1 timeout 270 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 int4 int8 --batch-sizes 1 8 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer.json > $O/torch_peer.log 2>&1; echo "rc=$?"; grep -E "decode|Error|error" $O/torch_peer.log | tail -12; t
