#!/usr/bin/env bash
# Session 11 call 7: does one shared-memory carveout for every kernel (bs1 switch coN) take away what the
# larger-smem one-row kernels (cg: 128 KB, tcc_*: up to 104 KB) cost their neighbours? bs1 A/B in one process.
set -uo pipefail
C=.carry/s11g; B=$C/trtforge; O=/tmp/s11g; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p $TRTFORGE_CACHE_DIR; cp $C/kcache/* $TRTFORGE_CACHE_DIR/ 2>/dev/null
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }; t() { echo "t=$(el)"; }
fin() { cp $C/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s11g.tgz -C /tmp s11g; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
bn() { local n=$1 m=$2; shift 2
  env "${E[@]}" timeout 70 $B bench --model preset:$m --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1; echo "$n rc=$?"; grep -E "variant|^\| (fp|int)|rror" $O/$n.log | sed -e 's/decode //' | cut -c1-120; t; }
E=(TRTFORGE_BS1_AB=default,default+ocomb,default+cg,default+co100,default+ocomb+co100,default+cg+co100,default+cg+ocomb+co100,default); bn b_fp16 tinyllama-1.1b --precisions fp16 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,default+co100,default,default+co100); bn b_int8 tinyllama-1.1b --precisions int8 --batch-sizes 1
E=(TRTFORGE_BS1_AB=default,default+co100,default,default+co100); bn b_smol smollm2-135m --precisions fp16 --batch-sizes 1
