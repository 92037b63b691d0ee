#!/usr/bin/env bash
# Session 28 call 3: the f8g FP8 GEMM in the engine (fp8 engines on cc 9.0 run W8A8 at 9..=64 rows by default).
# (1) bench fp16,fp8 (default: f8g) at bs 1,16,32,64; (2) fp8 with TRTFORGE_FP8_GEMM=0 (the old W8A16 default) at
# bs 16,64; (3) TRTFORGE_CHECKS=f8g cuda-check (TinyLlama shape fp8 vs the CPU reference rounding the same inputs).
set -uo pipefail
C=.carry/s28; B=$C/trtforge; O=/tmp/s28; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/K/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }; left() { echo $(( 580 - $(date +%s) + T0 )); }
fin() { cp $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s28.tgz -C /tmp s28; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
R() { local tag=$1 lim=$2; shift 2; timeout $lim "$@" > $O/$tag.log 2>&1; echo "$tag rc=$?"; grep -E "^\| (fp|int)|rror|eager decode step|warning|note" $O/$tag.log | cut -c1-400; t; }
R b_def 200 $B bench --model preset:tinyllama-1.1b --precisions fp16,fp8 --batch-sizes 1,16,32,64 --input-lens 512 --output-len 128 --json $O/b_def.json
TRTFORGE_FP8_GEMM=0 R b_off 120 $B bench --model preset:tinyllama-1.1b --precisions fp8 --batch-sizes 16,64 --input-lens 512 --output-len 128 --json $O/b_off.json
TRTFORGE_CHECKS=f8g R chk $(( $(left) - 10 )) $B cuda-check --tiny tests/fixtures/tiny_llama
grep -E "PASS|FAIL|passed|failed" $O/chk.log | cut -c1-300
true
