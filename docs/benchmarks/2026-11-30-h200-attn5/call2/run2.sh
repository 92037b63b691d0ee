#!/usr/bin/env bash
# helper K, session 5, branch attn5, call 2: the hybrid default (attn_decode_cl at bs64, attn_decode_tc
# below), ncu of both kernels at bs64, the bs8 graph regression of call 1 (PDL off, 2 stages), and the
# SmolLM2 fp8-KV logits check with each kernel. Results: $OUT/k5b.tgz.
set -uo pipefail
C=.carry/K; B=$C/trtforge; O=/tmp/k5b; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 PATH=$PATH:/usr/local/cuda/bin
export TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kc1/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }; el() { echo $(( $(date +%s) - T0 )); }
fin() { cp $C/run2.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/k5b.tgz -C /tmp k5b; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; command -v ncu; } > $O/env.txt 2>&1; cat $O/env.txt
M="--model preset:tinyllama-1.1b"
bench() { # name, timeout, env..., -- args
  local n=$1 to=$2; shift 2; local e=(); while [ "$1" != "--" ]; do e+=("$1"); shift; done; shift
  env "${e[@]}" timeout $to $B bench $M "$@" --json $O/$n.json > $O/$n.log 2>&1; echo "$n rc=$?"
  grep -E "eager decode step|decode [0-9]+ tok/s" $O/$n.log | sed -E 's/embed [0-9]+ µs, //; s/, select.*//; s/TTFT.*decode/decode/'
}
F="--precisions fp16 --input-lens 512 --output-len 128"
bench hyb 40 X=1 -- $F --batch-sizes 1,8,64; t
NCU="ncu --clock-control none -k regex:attn_decode -s 30 -c 1 --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis"
for v in cl tc1; do
  TRTFORGE_ATTN=$v timeout 45 $NCU $B bench $M --precisions fp16 --batch-sizes 64 --input-lens 512 --output-len 4 --runs 1 > $O/ncu_bs64_$v.txt 2>&1; echo "ncu $v rc=$?"
  grep -E "attn_decode|Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Registers Per|Block Limit Shared|Grid Size" $O/ncu_bs64_$v.txt | head -12; t
done
bench cl_pdl0_bs8 25 TRTFORGE_ATTN=cl TRTFORGE_PDL=0 -- $F --batch-sizes 8; t
bench tc_pdl0_bs8 25 TRTFORGE_ATTN=tc1 TRTFORGE_PDL=0 -- $F --batch-sizes 8; t
bench cl_st2 25 TRTFORGE_ATTN=cl TRTFORGE_ATTN_STAGES=2 -- $F --batch-sizes 1,8; t
for v in cl tc1; do
  [ $(el) -lt 125 ] || break
  TRTFORGE_ATTN=$v TRTFORGE_CHECKS=smolkv timeout 25 $B cuda-check --tiny tests/fixtures/tiny_llama > $O/check_smolkv_$v.log 2>&1; echo "smolkv $v rc=$?"; grep -E "PASS|FAIL" $O/check_smolkv_$v.log; t
done
if [ $(el) -lt 120 ]; then
  bench kv8_cl 25 TRTFORGE_ATTN=cl -- --precisions fp16 --kv-cache fp8 --input-lens 512 --output-len 128 --batch-sizes 64; t
  bench kv8_tc 25 TRTFORGE_ATTN=tc1 -- --precisions fp16 --kv-cache fp8 --input-lens 512 --output-len 128 --batch-sizes 64; t
fi
echo "== summary"; for f in $O/*.log; do grep -H -E "^\| fp16" $f; done | sed "s#$O/##"
