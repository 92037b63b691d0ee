#!/usr/bin/env bash
# Session 35, call 8 (the budget's last ≈ 270 s): main 005dbec's src (binary .carry/z/m41.tgz, as call 7) beside the
# torch.compile peer in one lease: TinyLlama fp16 bs1 default and megakernel path, SmolLM2 shape fp16 bs1, the peer's
# fp16 bs1 (scripts/torch_baseline.py).
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/m41.tgz -C /tmp/cz && gunzip -f /tmp/cz/m41/trtforge.gz && chmod +x /tmp/cz/m41/trtforge
O=/tmp/c8; mkdir -p $O /tmp/kn; cp /tmp/cz/m41/K/* /tmp/kn/
trap "tar czf $OUT/c8.tgz -C /tmp c8" EXIT
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kn; T0=$(date +%s)
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; cat /tmp/cz/m41/commit.txt; sha256sum /tmp/cz/m41/trtforge; } | tee $O/env.txt
run() { # name model [env...]
  local n=$1 m=$2; shift 2
  env "$@" timeout 40 /tmp/cz/m41/trtforge bench --model preset:$m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never --json $O/$n.json > $O/$n.log 2>&1
  echo "$n rc=$? t=$(( $(date +%s) - T0 ))"; grep -E "^\| fp16|rror" $O/$n.log | cut -c1-120; }
run tiny tinyllama-1.1b X=1; run smollm2 smollm2-135m X=1; run tiny_mk tinyllama-1.1b TRTFORGE_MK=1
PYTHONUNBUFFERED=1 timeout 100 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer_fp16.json > $O/torch_peer_fp16.log 2>&1
echo "peer rc=$? t=$(( $(date +%s) - T0 ))"; grep -E "decode|rror" $O/torch_peer_fp16.log | tail -3
run tiny_2 tinyllama-1.1b X=1; run smollm2_2 smollm2-135m X=1
