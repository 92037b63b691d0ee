#!/usr/bin/env bash
# Session 27 call 2: main's default path (src/ as in 8c5dd8f, CI-passed) beside the torch.compile peer in ONE call, so
# that every peer row — fp16 and, for the first time in the same lease as ours, int4 / int8 — is measured beside ours
# (carry .carry/f2: the binary and the kernel cache of TinyLlama fp16 / int4 / int8 / fp8 and SmolLM2 fp16).
# (1) one `trtforge bench` fp16,int4,int8,fp8 at bs 1,8,64 (--isolate auto: one child process an engine);
# (2) scripts/torch_baseline.py fp16, then int4 int8, bs 1 8 64 (static KV cache, torch.compile, CUDA graphs);
# (3) with the time left: SmolLM2-135M fp16 bs1.
# First (≈ 40 s): the fused attention + o prologue probe (fa_o/fa_o.cu, nvcc on the device), see ../README.md.
set -uo pipefail
C=.carry/f2; B=$C/trtforge; O=/tmp/f2; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/K/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }; left() { echo $(( 580 - $(date +%s) + T0 )); }
fin() { cp $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/f2.tgz -C /tmp f2; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; python3 -c "import torch;print('torch',torch.__version__)"; } > $O/env.txt 2>&1; cat $O/env.txt
D=docs/benchmarks/2026-12-03-h200-session27
( export PATH=/usr/local/cuda/bin:$PATH; nvcc -O3 -gencode arch=compute_90a,code=sm_90a -std=c++17 -Xptxas=-v $D/fa_o/fa_o.cu -o /tmp/fa_o > $O/fa_o_build.log 2>&1; echo "nvcc rc=$?"; grep -E "error|registers|spill" $O/fa_o_build.log | head -8
  timeout 60 /tmp/fa_o > $O/fa_o.log 2>&1; echo "fa_o rc=$?"; cat $O/fa_o.log ); t
timeout 170 $B bench --model preset:tinyllama-1.1b --precisions fp16,int4,int8,fp8 --batch-sizes 1,8,64 --input-lens 512 --output-len 128 --json $O/b_all.json > $O/b_all.log 2>&1
echo "b_all rc=$?"; grep -E "^\| (fp|int)|rror|isolat|child" $O/b_all.log | cut -c1-140; t
peer() { local tag=$1; shift; local CT=$(( $(left) - 15 )); [ $CT -lt 60 ] && return
  PYTHONUNBUFFERED=1 timeout $CT python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions "$@" --batch-sizes 1 8 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer_$tag.json > $O/torch_peer_$tag.log 2>&1
  echo "peer $tag rc=$?"; grep -E "decode|Error|error" $O/torch_peer_$tag.log | tail -8; t; }
peer fp16 fp16
peer q int4 int8
[ $(left) -gt 40 ] && { timeout $(( $(left) - 5 )) $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never --json $O/smollm2.json > $O/smollm2.log 2>&1
  echo "smollm2 rc=$?"; grep -E "^\| (fp|int)|rror" $O/smollm2.log | cut -c1-140; t; }
true
