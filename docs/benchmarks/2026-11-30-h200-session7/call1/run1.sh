#!/usr/bin/env bash
# Lead's final lease (session 7), ONE call: the merged main binary (commit.txt). Bench all precisions
# bs 1/8/64 (prompt 512, 128 new) + fp16 bs64 with TRTFORGE_ATTN=cx8, SmolLM2 shape bs1; checks of the
# merged defaults (bs1q, attn) and of cx8 (TRTFORGE_ATTN_CS=1 long-prompt prefill list + attn list with
# cx8 at every batch size); then the torch.compile peer in what is left of DL seconds (rows saved as
# they finish); then the TinyLlama-shape prefill list if time is left. One tar: $OUT/final7.tgz.
set -uo pipefail
C=.carry/final7; B=$C/trtforge; O=/tmp/f7; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
DL=${DL:-540}
fin() { cp $C/run1.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/final7.tgz -C /tmp f7; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; $B --version; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
echo "== bench"; timeout 200 $B bench --model preset:tinyllama-1.1b --precisions fp16,int8,int4,fp8 --batch-sizes 1,8,64 --input-lens 512 --output-len 128 --json $O/trtforge_tinyllama.json > $O/trtforge_tinyllama.log 2>&1; echo rc=$?; grep -E "^\|" $O/trtforge_tinyllama.log | tail -14; t
TRTFORGE_ATTN=cx8 timeout 40 $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 64 --input-lens 512 --output-len 128 --json $O/trtforge_cx8_bs64.json > $O/trtforge_cx8_bs64.log 2>&1; echo cx8 rc=$?; grep -E "^\| fp16" $O/trtforge_cx8_bs64.log | tail -1; t
timeout 30 $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --json $O/trtforge_smollm2.json > $O/trtforge_smollm2.log 2>&1; grep -E "^\| fp16" $O/trtforge_smollm2.log | tail -1; t
echo "== checks"
chk() { local n=$1 to=$2 list=$3; shift 3
  env "$@" TRTFORGE_CHECKS=$list timeout $to $B cuda-check --tiny tests/fixtures/tiny_llama ${TL:-} > $O/check_$n.log 2>&1; echo "check $n rc=$?"
  grep -E "FAIL|passed" $O/check_$n.log | tail -4; t; }
chk bs1q 45 bs1q
chk attn 45 attn
chk cx8all_cs1_prefill 45 prefill TRTFORGE_ATTN=cx8all TRTFORGE_ATTN_CS=1
chk cx8all_attn 35 attn TRTFORGE_ATTN=cx8all
echo "== peer"; PT=$(( DL - $(el) - ${TLC:-0} )); echo "peer budget $PT s"
if [ $PT -gt 40 ]; then
  date -u > $O/env_peer.txt; python3 -c "import torch;print('torch',torch.__version__)" >> $O/env_peer.txt
  PYTHONUNBUFFERED=1 timeout $PT python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions ${PEER_PRECS:-fp16 int4 int8} --batch-sizes 1 8 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer.json > $O/torch_peer.log 2>&1; echo "peer rc=$?"; grep -E "decode|Error|error" $O/torch_peer.log | tail -12; t
fi
R=$(( DL + 40 - $(el) )); if [ $R -gt 30 ]; then TL=--tinyllama chk prefill_tl $R prefill; fi
