#!/usr/bin/env bash
# Next session's first three calls (prepared in session 17): SmolLM2-135M-Instruct (the real GGUF, 98 MB: two calls carry its halves, .carry/s17gA / s17gB,
# joined to /tmp/smol.gguf and checked against the manifests' SHA-256) evaluated on the CUDA engine: fp16 KV, the fp8 KV
# default (K centred + rotated) and the plain fp8 KV, Hamlet and The Tempest, ctx 512, 24 windows. The engine dirs
# travel without model.onnx (the CUDA engine runs the source weights; their manifests list the rest, source -> /tmp/smol.gguf).
#   call 4: mkdir -p /tmp/g && cp .carry/s17gA/part /tmp/g/a
#   call 5: cat /tmp/g/a .carry/s17gB/part > /tmp/smol.gguf && sha256sum /tmp/smol.gguf
#   call 6: bash docs/benchmarks/2026-12-01-h200-session17/next_call_smollm2_cuda_eval.sh   (this script, carry .carry/s17e)
# Prepared in session 17 and not run: the session's device time ran out (210 s left, too little to start a machine).
set -uo pipefail
C=.carry/s17e; B=$C/trtforge; O=/tmp/s17e; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kc/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s17e.tgz -C /tmp s17e; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; cat $C/commit.txt; sha256sum /tmp/smol.gguf; } > $O/env.txt 2>&1; cat $O/env.txt
for play in hamlet tempest; do
  for e in smollm2_fp16 smollm2_fp16_kv_fp8 smollm2_fp16_kv_fp8_plain; do
    timeout 90 $B eval --engine-dir $C/eng/$e --backend cuda --text $C/${play}_gut.txt --ctx 512 --windows 24 --json > $O/$e.$play.json 2> $O/$e.$play.log
    echo "$e $play rc=$? $(python3 -c "import json,sys;d=json.load(open('$O/$e.$play.json'));print(d.get('perplexity'))" 2>&1 | tail -1)"; t
  done
done
