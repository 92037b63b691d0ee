#!/usr/bin/env bash
# Session 10 call 5 (final): the new default (attn_decode_cg at 2-8 rows) beside the torch.compile peer in one
# lease: one bench process per precision (fp16, int4, int8) at bs 1/8/64, the `attn` check list, then the peer.
set -uo pipefail
C=.carry/s10e; B=$C/trtforge; O=/tmp/s10e; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
DL=${DL:-430}
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s10e.tgz -C /tmp s10e; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1; shift
  timeout 60 $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "^\| (fp|int)" $O/$n.log | cut -d'|' -f2-7; t; }
for p in fp16 int4 int8; do bn b_$p --precisions $p --batch-sizes 1,8,64; done
TRTFORGE_CHECKS=attn timeout 90 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_attn.log 2>&1; echo "check attn rc=$?"; grep -E "FAIL|passed" $O/check_attn.log | tail -3; t
PT=$(( DL - $(el) )); echo "peer budget $PT s"
if [ $PT -gt 60 ]; then
  date -u > $O/env_peer.txt; python3 -c "import torch;print('torch',torch.__version__)" >> $O/env_peer.txt
  PYTHONUNBUFFERED=1 timeout $PT python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 int4 int8 --batch-sizes 1 8 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer.json > $O/torch_peer.log 2>&1; echo "peer rc=$?"; grep -E "decode|Error|error" $O/torch_peer.log | tail -12; t
fi
