#!/usr/bin/env bash
# Session 17 call 3: the fp8 KV cache at 512 context, bs64 came out 44.0k (plain) / 44.5k (centred + rotated) in the
# final lease (one process), 46.2-46.8k in sessions 12-14. Same lease: session 14's binary (20f6c4d, .carry/s14b; carried with HEAD's as .carry/s17c)
# as the control, HEAD's plain and default caches each in a process of its own, then a timeline of HEAD's plain.
set -uo pipefail
O=/tmp/s17c; mkdir -p $O/raw
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp .carry/s17c/kc/* .carry/s17c/s14/*.cubin $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp .carry/s17c/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s17c.tgz -C /tmp s17c; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; } > $O/env.txt 2>&1
bn() { local n=$1 b=$2; shift 2
  env "${E[@]}" timeout 150 $b bench --model preset:tinyllama-1.1b --precisions fp16 --input-lens 512 --output-len 128 --batch-sizes 64 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "^\| (fp|int)|rror|timeline" $O/$n.log | cut -c1-200; t; }
E=(); bn ctl14_fp8 .carry/s17c/s14/trtforge --kv-cache fp8
E=(); bn head_fp8_plain .carry/s17c/trtforge --kv-cache fp8_plain
E=(); bn head_fp8 .carry/s17c/trtforge --kv-cache fp8
E=(); bn ctl14_fp8_b .carry/s17c/s14/trtforge --kv-cache fp8
E=(TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_RAW=$O/raw); bn tl_head_fp8_plain .carry/s17c/trtforge --kv-cache fp8_plain
E=(TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_RAW=$O/raw); bn tl_ctl14_fp8 .carry/s17c/s14/trtforge --kv-cache fp8
