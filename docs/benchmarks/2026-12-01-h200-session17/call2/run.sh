#!/usr/bin/env bash
# Session 17 final lease: HEAD's defaults beside the torch.compile peer in one lease: one bench process per
# precision (fp16 at bs 1/8/16/32/64; int4, int8, fp8 at bs 1/8/64), SmolLM2 shape bs 1/8, fp16 weights with the fp8 KV
# cache at bs64 (512 context): the new default (K centred + rotated) and plain, then the peer
# (scripts/torch_baseline.py) with what is left of the budget.
set -uo pipefail
C=${C:-.carry/s17b}; B=$C/trtforge; O=/tmp/s17b; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
DL=${DL:-585}
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s17b.tgz -C /tmp s17b; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  timeout 90 $B bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "^\| (fp|int)|rror" $O/$n.log | cut -c1-120; t; }
bn b_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1,8,16,32,64
for p in int4 int8 fp8; do bn b_$p tinyllama-1.1b --precisions $p --batch-sizes 1,8,64; done
bn b_smol smollm2-135m --precisions fp16 --batch-sizes 1,8
bn b_kv8 tinyllama-1.1b --precisions fp16 --kv-cache fp8,fp8_plain --batch-sizes 64
[ -n "${NO_PEER:-}" ] && exit 0
PT=$(( DL - $(el) )); echo "peer budget $PT s"
if [ $PT -gt 60 ]; then
  date -u > $O/env_peer.txt; python3 -c "import torch;print('torch',torch.__version__)" >> $O/env_peer.txt
  PYTHONUNBUFFERED=1 timeout $PT python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 8 16 32 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer_fp16.json > $O/torch_peer_fp16.log 2>&1; echo "peer fp16 rc=$?"; grep -E "decode|Error|error" $O/torch_peer_fp16.log | tail -12; t
  PT=$(( DL - $(el) )); echo "peer budget $PT s"
  PYTHONUNBUFFERED=1 timeout $PT python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions int4 int8 --batch-sizes 1 8 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer_q.json > $O/torch_peer_q.log 2>&1; echo "peer q rc=$?"; grep -E "decode|Error|error" $O/torch_peer_q.log | tail -12; t
fi
