#!/usr/bin/env bash
# Session 19, call 5 (final lease): HEAD (the default CUDA path unchanged since session 18's 4027fef; 19a509b's review of
# the bench child processes not yet run on a GPU) — one `trtforge bench` for four precisions with the default
# --isolate auto (each precision's engine in its own child process, rows merged), SmolLM2's shape, then the torch.compile
# peer (scripts/torch_baseline.py) in the same lease.
set -uo pipefail
C=.carry/s19d; B=$C/trtforge; D=docs/benchmarks/2026-12-02-h200-session19; O=/tmp/s19c5; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $D/call5/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s19c5.tgz -C /tmp s19c5; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; python3 -c "import torch;print('torch',torch.__version__)"; } > $O/env.txt 2>&1; cat $O/env.txt
timeout 220 $B bench --model preset:tinyllama-1.1b --precisions fp16,int4,int8,fp8 --batch-sizes 1,8,64 --input-lens 512 --output-len 128 --json $O/b_all.json > $O/b_all.log 2>&1
echo "b_all rc=$?"; grep -E "^\| (fp|int)|rror|isolat|child" $O/b_all.log | cut -c1-140; t
timeout 60 $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1,8 --input-lens 512 --output-len 128 --json $O/b_smol.json > $O/b_smol.log 2>&1
echo "b_smol rc=$?"; grep -E "^\| (fp|int)|rror" $O/b_smol.log | cut -c1-140; t
PT=$(( 540 - $(date +%s) + T0 )); echo "peer budget $PT s"
PYTHONUNBUFFERED=1 timeout $PT python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 8 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer_fp16.json > $O/torch_peer_fp16.log 2>&1; echo "peer fp16 rc=$?"; grep -E "decode|Error|error" $O/torch_peer_fp16.log | tail -8; t
