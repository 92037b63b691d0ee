#!/usr/bin/env bash
# Session 18, call 1 (after the two calls that carry the SmolLM2 GGUF's halves to /tmp/smol.gguf):
# (a) session 17's prepared SmolLM2-on-CUDA perplexity (fp16 KV, the fp8 KV default = K centred + rotated, plain fp8 KV;
#     Hamlet and The Tempest, ctx 512, 24 windows) and
# (b) the slow "second load" of a bench process (sessions 8 and 17): the same precision twice in one process at bs64
#     and bs1, plain, with TRTFORGE_PDL=0 and with TRTFORGE_GEMM=lt; clocks / power sampled beside.
set -uo pipefail
C=.carry/s17e; B=$C/trtforge; O=/tmp/s18c1; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kc/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { kill $SMI 2>/dev/null; cp docs/benchmarks/2026-12-02-h200-session18/call1/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s18c1.tgz -C /tmp s18c1; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; sha256sum /tmp/smol.gguf; } > $O/env.txt 2>&1; cat $O/env.txt
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,utilization.gpu --format=csv -lms 250 > $O/smi.csv 2>&1 &
SMI=$!
for play in hamlet tempest; do
  for e in smollm2_fp16 smollm2_fp16_kv_fp8 smollm2_fp16_kv_fp8_plain; do
    timeout 90 $B eval --engine-dir $C/eng/$e --backend cuda --text $C/${play}_gut.txt --ctx 512 --windows 24 --json > $O/$e.$play.json 2> $O/$e.$play.log
    echo "$e $play rc=$? $(python3 -c "import json;d=json.load(open('$O/$e.$play.json'));print(d.get('perplexity'))" 2>&1 | tail -1)"; t
  done
done
bn() { local n=$1; shift
  env "${E[@]}" timeout 100 $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1
  echo "$n rc=$?"; grep -E "^\| (fp|int)|rror|host enqueue" $O/$n.log | cut -c1-140; t; }
E=(TRTFORGE_DECODE_LOG=1); bn two_b64 --precisions fp16,fp16 --batch-sizes 64
E=(TRTFORGE_DECODE_LOG=1 TRTFORGE_PDL=0); bn two_b64_pdl0 --precisions fp16,fp16 --batch-sizes 64
E=(TRTFORGE_DECODE_LOG=1 TRTFORGE_GEMM=lt); bn two_b64_lt --precisions fp16,fp16 --batch-sizes 64
E=(TRTFORGE_DECODE_LOG=1); bn three_b1_8 --precisions fp16,fp16,fp16 --batch-sizes 1,8
E=(TRTFORGE_DECODE_LOG=1); bn two_b64_again --precisions fp16,fp16 --batch-sizes 64
# (c) this session's bench: every precision of a multi-precision roofline in a process of its own (--isolate auto)
N=.carry/s18a/trtforge
if [ -x $N ]; then
  nb() { local n=$1; shift; timeout 150 $N bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1
    echo "$n rc=$?"; grep -E "^\| (fp|int)|rror" $O/$n.log | cut -c1-140; t; }
  nb new_two_b64 --precisions fp16,fp16 --batch-sizes 64
  nb new_two_b64_never --precisions fp16,fp16 --batch-sizes 64 --isolate never
fi
