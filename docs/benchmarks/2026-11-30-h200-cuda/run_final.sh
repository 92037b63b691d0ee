#!/usr/bin/env bash
# Final call: checks (incl. engine dirs: cuda vs cpu vs ort), cuda-bench, `trtforge bench` on engine dirs.
set -uo pipefail
C=.carry/cuda; B=$C/trtforge; O=${OUT:-/tmp/out}; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
xz -dc $C/libonnxruntime.so.1.31.1.xz > /tmp/libonnxruntime.so.1.31.1 && export TRTFORGE_ORT_LIB=/tmp/libonnxruntime.so.1.31.1
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; $B --version; } > $O/env.txt
( for n in smolp_int4 smolp_int8 tl_fp16 tl_int8 tl_int4; do $B convert --config $C/cfg/$n.yaml > /tmp/convert_$n.log 2>&1; done; touch /tmp/convert.done ) &
echo "== check"; timeout 170 $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check.log 2>&1; grep -E "FAIL|passed" $O/check.log; t
if grep -q "^FAIL" $O/check.log; then echo "check failed: benches with TRTFORGE_ATTN=v2"; export TRTFORGE_ATTN=v2; fi
echo "== cuda-bench"; timeout 100 $B cuda-bench --precision fp16,int8,int4 --batch 1,8,64 --json $O/cuda_bench.json > $O/cuda_bench.log 2>&1; grep -E "bs[0-9]+:" $O/cuda_bench.log; t
echo "== smollm2 shape"; timeout 30 $B cuda-bench --model preset:smollm2-135m --precision fp16,int4 --batch 1 > /tmp/smol.log 2>&1; grep -E "bs[0-9]+:" /tmp/smol.log | tee -a $O/cuda_bench.log; t
while [ ! -f /tmp/convert.done ] && [ $(( $(date +%s) - T0 )) -lt 260 ]; do sleep 2; done; tail -qn1 /tmp/convert_*.log; t
echo "== engine dirs"; timeout 60 $B cuda-check --engine-dir /tmp/eng/smolp_int4 /tmp/eng/smolp_int8 > /tmp/edir.log 2>&1; cat /tmp/edir.log | tee -a $O/check.log; t
echo "== bench"; timeout 150 $B bench --engine-dirs /tmp/eng/tl_fp16 /tmp/eng/tl_int8 /tmp/eng/tl_int4 --backends cuda --batch-sizes 1 8 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --out /tmp/rep > $O/bench.log 2>&1; cp /tmp/rep/results.json $O/bench_results.json 2>/dev/null; cp /tmp/rep/report.md $O/bench_report.md 2>/dev/null; grep -E "^\| *tl_" /tmp/rep/*.md | head -12; tail -3 $O/bench.log; t
echo "== torch peer smoke"; PYTHONUNBUFFERED=1 timeout 100 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 int4 --batch-sizes 1 8 --input-lens 512 --output-len 32 --runs 1 --warmup 1 --out /tmp/torch.json > $O/torch.log 2>&1; echo "rc=$?" >> $O/torch.log; tail -5 $O/torch.log; python3 -c "import json;d=json.load(open('/tmp/torch.json'));[print(r.get('engine'),r.get('backend'),r.get('batch'),r.get('decode_tok_s'),r.get('ttft_ms')) for r in d.get('speed',[])]" 2>&1 | tee -a $O/torch.log; t
