#!/usr/bin/env bash
# helper B session 8: int8-vs-fp16 bs64 order A/B (final7 binary = main 112b429 kernels) + nsys kernel summary of fp16/int8 bs64
set -uo pipefail
C=.carry/final7; B=$C/trtforge; O=/tmp/b8; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/
fin() { tar czf ${OUT:-/tmp}/b8.tgz -C /tmp b8; }; trap fin EXIT
{ nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader; date -u; cat $C/commit.txt; which nsys ncu; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 p=$2; date -u; timeout 60 $B bench --model preset:tinyllama-1.1b --precisions $p --batch-sizes 64 --input-lens 512 --output-len 128 --json $O/$n.json > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "^\|" $O/$n.log | tail -5; }
bn orderA fp16,int8,int4,fp8
bn orderB int8,fp16,fp8,int4
bn orderC fp16,int8,fp16,int8
if which nsys >/dev/null 2>&1; then for p in fp16 int8; do
 timeout 60 nsys profile -o $O/ns_$p --force-overwrite true -t cuda --cuda-graph-trace node $B bench --model preset:tinyllama-1.1b --precisions $p --batch-sizes 64 --input-lens 512 --output-len 16 > $O/ns_$p.log 2>&1; echo ns $p rc=$?
 timeout 60 nsys stats -r cuda_gpu_kern_sum -f csv -o $O/ks_$p $O/ns_$p.nsys-rep > /dev/null 2>&1; head -30 $O/ks_${p}*.csv | cut -c1-200
 rm -f $O/ns_$p.nsys-rep $O/ns_$p.sqlite; done; fi
date -u
