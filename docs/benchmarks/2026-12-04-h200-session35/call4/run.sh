#!/usr/bin/env bash
# Session 35, call 4: main a979df6 (src/ unchanged since session 34's landed HEAD) beside the torch.compile peer in ONE
# call — every row of issue #11's table and #15's fp8 rows from one lease. Carry .carry/z/m39.tgz: the stripped binary
# and its NVRTC modules (TinyLlama fp16 / int4 / int8 / fp8, the fp16 megakernel module, SmolLM2 fp16), precompiled
# here with NVRTC 13.0.88.
# (1) trtforge bench fp16,int4,int8,fp8 at bs 1,8,64 (--isolate auto: one child process an engine);
# (2) fp16 bs1 with the opt-in megakernel (TRTFORGE_MK=1);
# (3) scripts/torch_baseline.py fp16, then int4 int8, bs 1 8 64 (static KV cache, torch.compile, CUDA graphs);
# (4) SmolLM2-135M shape fp16 bs1.
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/m39.tgz -C /tmp/cz && gunzip -f /tmp/cz/m39/trtforge.gz && chmod +x /tmp/cz/m39/trtforge
B=/tmp/cz/m39/trtforge; O=/tmp/c4; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp /tmp/cz/m39/K/* /tmp/kc/
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }; left() { echo $(( 560 - $(date +%s) + T0 )); }
trap "cp /tmp/cz/m39/commit.txt $O/; tar czf $OUT/c4.tgz -C /tmp c4" EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat /tmp/cz/m39/commit.txt; sha256sum $B; python3 -c "import torch;print('torch',torch.__version__)"; } > $O/env.txt 2>&1; cat $O/env.txt
timeout 200 $B bench --model preset:tinyllama-1.1b --precisions fp16,int4,int8,fp8 --batch-sizes 1,8,64 --input-lens 512 --output-len 128 --json $O/b_all.json > $O/b_all.log 2>&1
echo "b_all rc=$?"; grep -E "^\| (fp|int)|rror|TTFT" $O/b_all.log | cut -c1-140; t
for i in 1 2; do TRTFORGE_MK=1 timeout 40 $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never --json $O/mk_$i.json > $O/mk_$i.log 2>&1
  echo "mk_$i rc=$?"; grep -E "^\| fp16|rror" $O/mk_$i.log | cut -c1-140; done; t
peer() { local tag=$1; shift; local CT=$(( $(left) - 40 )); [ $CT -lt 60 ] && { echo "peer $tag skipped (time)"; return; }
  PYTHONUNBUFFERED=1 timeout $CT python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions "$@" --batch-sizes 1 8 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer_$tag.json > $O/torch_peer_$tag.log 2>&1
  echo "peer $tag rc=$?"; grep -E "decode|Error|error" $O/torch_peer_$tag.log | tail -8; t; }
peer fp16 fp16
peer q int4 int8
[ $(left) -gt 30 ] && { timeout $(( $(left) - 5 )) $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never --json $O/smollm2.json > $O/smollm2.log 2>&1
  echo "smollm2 rc=$?"; grep -E "^\| (fp|int)|rror" $O/smollm2.log | cut -c1-140; t; }
true
