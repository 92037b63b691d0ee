#!/usr/bin/env bash
# Lead's final lease (session 9), ONE call: the merged main binary (commit.txt). One bench process per
# precision (b64_8: a second model load in a process runs bs64 ~4 % slower), bs 1/8/64, prompt 512, 128 new;
# opt-in rmsnorm_b at bs64 (TRTFORGE_PREFILL_RMSB=1, solo process); TTFT A/B fa / fg / fg+rmsnorm_b in one
# process; SmolLM2 shape bs1; checks of the defaults (bs1q, attn, prefill --tinyllama with fg) and with
# rmsnorm_b; the torch.compile peer; bs8 timeline if time is left. One tar: $OUT/final9.tgz.
set -uo pipefail
C=.carry/final9; B=$C/trtforge; O=/tmp/f9; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
DL=${DL:-520}
fin() { cp $C/run1.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/final9.tgz -C /tmp f9; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; $B --version; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 to=$2; shift 2
  env "${E[@]}" timeout $to $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "^\|" $O/$n.log | grep -v -- "---" | tail -4; t; }
echo "== bench (one process per precision)"
E=(X=1); for p in fp16 int8 int4 fp8; do bn tl_$p 90 --precisions $p --batch-sizes 1,8,64; done
E=(TRTFORGE_PREFILL_RMSB=1); bn tl_fp16_rmsb_bs64 50 --precisions fp16 --batch-sizes 64
E=(TRTFORGE_PREFILL_AB=fa=fegy,fg=fegyG,fgrb=fegyGr,fa2=fegy,fg2=fegyG,fgrb2=fegyGr); bn tl_fp16_ttft_ab 60 --precisions fp16 --batch-sizes 1
grep -E " AB " $O/tl_fp16_ttft_ab.log | sed -e 's/; kernels.*//'
E=(X=1); timeout 30 $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --json $O/smollm2.json > $O/smollm2.log 2>&1; grep -E "^\| fp16" $O/smollm2.log | tail -1; t
echo "== checks"
chk() { local n=$1 to=$2 list=$3; shift 3
  env "$@" TRTFORGE_CHECKS=$list timeout $to $B cuda-check --tiny tests/fixtures/tiny_llama ${TL:-} > $O/check_$n.log 2>&1; echo "check $n rc=$?"
  grep -E "FAIL|passed" $O/check_$n.log | tail -4; t; }
chk bs1q 45 bs1q
chk attn 45 attn
TL=--tinyllama chk prefill_tl 70 prefill
TL=--tinyllama chk prefill_tl_rmsb 70 prefill TRTFORGE_PREFILL_RMSB=1
echo "== peer"; PT=$(( DL - $(el) - 20 )); echo "peer budget $PT s"
if [ $PT -gt 40 ]; then
  date -u > $O/env_peer.txt; python3 -c "import torch;print('torch',torch.__version__)" >> $O/env_peer.txt
  PYTHONUNBUFFERED=1 timeout $PT python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions ${PEER_PRECS:-fp16 int4 int8} --batch-sizes 1 8 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer.json > $O/torch_peer.log 2>&1; echo "peer rc=$?"; grep -E "decode|Error|error" $O/torch_peer.log | tail -12; t
fi
R=$(( DL + 50 - $(el) )); if [ $R -gt 25 ]; then E=(TRTFORGE_TIMELINE=1); bn tl_fp16_bs8_timeline $R --precisions fp16 --batch-sizes 8; fi
