#!/usr/bin/env bash
# helper B session 8, PREPARED, NOT RUN (B's GPU cap was spent): next tests of the slow bs64 decode of a
# process's 2nd model load. Priority order; DL (default 150) device seconds for the whole script.
# (1) the workaround: one bench process per precision (each load = first load of its process);
# (2) fp16,fp16 A/B in one process per variant: base+timeline (where do the +80 us go: kernels or gaps),
#     TRTFORGE_ARENA_MB (identical VA + physical memory for both loads), TRTFORGE_PDL=0, TRTFORGE_GEMM=lt.
set -uo pipefail
C=.carry/B; B=$C/trtforge; O=/tmp/b8c; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/
T0=$(date +%s); left() { echo $(( ${DL:-150} - $(date +%s) + T0 )); }
fin() { tar czf ${OUT:-/tmp}/b8c.tgz -C /tmp b8c; }; trap fin EXIT
bn() { local n=$1 p=$2 to=$3; shift 3; [ $(left) -lt $to ] && { echo "skip $n"; return; }
  echo "== $n $(date -u +%T) $*" | tee -a $O/times.txt
  env "$@" timeout $to $B bench --model preset:tinyllama-1.1b --precisions $p --batch-sizes 64 --input-lens 512 --output-len 128 --json $O/$n.json > $O/$n.log 2>&1
  echo "$n rc=$? $(date -u +%T)" | tee -a $O/times.txt; grep -E "^\| (fp|int)" $O/$n.log; }
for p in fp16 int8 int4 fp8; do bn solo_$p $p 40; done
bn tl fp16,fp16 45 TRTFORGE_TIMELINE=1 TRTFORGE_DECODE_LOG=1
bn arena fp16,fp16 40 TRTFORGE_ARENA_MB=8192 TRTFORGE_ALLOC_LOG=1
bn pdl0 fp16,fp16 40 TRTFORGE_PDL=0
bn lt fp16,fp16 45 TRTFORGE_GEMM=lt
date -u +%T
