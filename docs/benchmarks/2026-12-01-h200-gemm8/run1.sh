#!/bin/bash
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp .carry/G/kcache/* /tmp/kc/
B=.carry/G/trtforge; mkdir -p $OUT/g
for bs in 16 64; do
timeout 200 ncu --clock-control none --kernel-name regex:'gemm|xmma|cutlass|sm90' --launch-skip 3000 --launch-count 24 --metrics gpu__time_duration.sum,dram__bytes_read.sum,launch__grid_size,launch__block_size \
  $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes $bs --input-lens 512 --output-len 128 > $OUT/g/ncu_bs$bs.txt 2>&1
done
tar czf $OUT/g.tgz -C $OUT g
