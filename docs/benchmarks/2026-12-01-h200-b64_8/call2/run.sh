#!/usr/bin/env bash
# helper B session 8 call 2: bs64 slow second load. Diagnostics (alloc / GEMM algo / decode enqueue logs,
# clocks) + A/B: base vs TRTFORGE_ARENA_MB (process arena) vs TRTFORGE_GEMM_TUNE_MS=0; checks with the arena on.
set -uo pipefail
C=.carry/B; B=$C/trtforge; O=/tmp/b8b; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,memory.used --format=csv -lms 250 > $O/smi.csv 2>&1 & SMI=$!
fin() { kill $SMI 2>/dev/null; tar czf ${OUT:-/tmp}/b8b.tgz -C /tmp b8b; }; trap fin EXIT
L="TRTFORGE_ALLOC_LOG=1 TRTFORGE_GEMM_LOG=1 TRTFORGE_DECODE_LOG=1"
bn() { local n=$1 p=$2; shift 2; echo "== $n $(date -u +%T) $*" | tee -a $O/times.txt; env "$@" timeout 70 $B bench --model preset:tinyllama-1.1b --precisions $p --batch-sizes 64 --input-lens 512 --output-len 128 --json $O/$n.json > $O/$n.log 2>&1; echo "$n rc=$? $(date -u +%T)" | tee -a $O/times.txt; grep -E "ready|decode [0-9]|127 steps" $O/$n.log; }
bn base fp16,int8 $L
bn arena fp16,int8 $L TRTFORGE_ARENA_MB=8192
bn tune0 fp16,fp16 $L TRTFORGE_GEMM_TUNE_MS=0
for c in attn bs1q; do date -u +%T; TRTFORGE_ARENA_MB=8192 TRTFORGE_CHECKS=$c timeout 60 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_$c.log 2>&1; echo "check $c rc=$?"; tail -2 $O/check_$c.log; done
date -u +%T
