#!/usr/bin/env bash
# Session 14 call 1: L2 prefetch of later weights by the one-row folded o GEMV (bs1 switches pfgN / pfdN / pfqN /
# pfw): bs1 A/B per engine in one process; session 13's binary (42b1aa6) as the default-path control (fp16).
set -uo pipefail
C=.carry/s14a; B=$C/trtforge; O=/tmp/s14a; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* .carry/s14ctl/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s14a.tgz -C /tmp s14a; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 100 ${BIN:-$B} bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "variant|^\| (fp|int)|rror" $O/$n.log | sed -e 's/decode //' | cut -c1-120; t; }
E=(TRTFORGE_BS1_AB=default,default+pfg64,default+pfg64+pfw,default+pfg16,default+pfg64+pfd8,default+pfg64+pfd24,default,default+pfg64); bn a_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default); BIN=.carry/s14ctl/trtforge bn ctl_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1
Q=default,default+pfg64,default+pfg64+pfd64,default+pfg64+pfd64+pfq64,default+pfg64+pfd64+pfq64+pfw,default,default+pfg64+pfd64+pfq64
E=(TRTFORGE_BS1_AB=$Q); bn a_int8 tinyllama-1.1b --precisions int8 --batch-sizes 1
E=(TRTFORGE_BS1_AB=$Q); bn a_int4 tinyllama-1.1b --precisions int4 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,default+pfg64+pfd64,default+pfg64+pfd64+pfq64,default); bn a_fp8 tinyllama-1.1b --precisions fp8 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,default+pfg64,default+pfg64+pfd64+pfq64,default,default+pfg64+pfd64+pfq64); bn a_smol smollm2-135m --precisions fp16 --batch-sizes 1
