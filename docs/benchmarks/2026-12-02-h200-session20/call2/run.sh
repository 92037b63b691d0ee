#!/usr/bin/env bash
# Session 20, call 2 (one warm lease with call 3): main 596e99b (down GEMVs: all of a warp's k-steps in one round of
# loads before the wait; f16 11 steps, where TRTFORGE_TC_UDOWN16=8 is the code before).
# (1) fp16 A/B in alternating processes: default / TC_UDOWN16=8 / default / TC_UDOWN16=8, bs 1 and 8;
# (2) final rows: one `trtforge bench` for fp16,int4,int8,fp8 at bs 1,8,64 (default --isolate auto), SmolLM2's shape,
#     then the torch.compile peer's fp16 rows (scripts/torch_baseline.py) in the same lease;
# (3) checks: TRTFORGE_CHECKS=udown (TinyLlama shape, every format, 1 and 3 sequences, against the CPU reference)
#     and the f16 one of the TC_UDOWN16=8 build.
set -uo pipefail
C=.carry/s20b; B=$C/trtforge; D=docs/benchmarks/2026-12-02-h200-session20; O=/tmp/s20c2; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $D/call2/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s20c2.tgz -C /tmp s20c2; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; python3 -c "import torch;print('torch',torch.__version__)"; } > $O/env.txt 2>&1; cat $O/env.txt
nb() { local n=$1; shift; env "${E[@]}" timeout 90 $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --isolate never --json $O/$n.json "$@" > $O/$n.log 2>&1
  echo "$n rc=$?"; grep -E "^\| (fp|int)|rror" $O/$n.log | cut -c1-120; t; }
for r in a b; do
  E=(X=1); nb fp16_def_$r --precisions fp16 --batch-sizes 1,8
  E=(TRTFORGE_TC_UDOWN16=8); nb fp16_u8_$r --precisions fp16 --batch-sizes 1,8
done
timeout 220 $B bench --model preset:tinyllama-1.1b --precisions fp16,int4,int8,fp8 --batch-sizes 1,8,64 --input-lens 512 --output-len 128 --json $O/b_all.json > $O/b_all.log 2>&1
echo "b_all rc=$?"; grep -E "^\| (fp|int)|rror|isolat|child" $O/b_all.log | cut -c1-140; t
timeout 60 $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1,8 --input-lens 512 --output-len 128 --json $O/b_smol.json > $O/b_smol.log 2>&1
echo "b_smol rc=$?"; grep -E "^\| (fp|int)|rror" $O/b_smol.log | cut -c1-140; t
PYTHONUNBUFFERED=1 timeout 150 python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 8 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer_fp16.json > $O/torch_peer_fp16.log 2>&1; echo "peer fp16 rc=$?"; grep -E "decode|Error|error" $O/torch_peer_fp16.log | tail -8; t
CT=$(( 580 - $(date +%s) + T0 )); echo "checks budget $CT s"
TRTFORGE_CHECKS=udown timeout $CT $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_udown.log 2>&1; echo "check rc=$?"; grep -E "PASS|FAIL|passed" $O/check_udown.log | cut -c1-160; t
CT=$(( 595 - $(date +%s) + T0 ))
[ $CT -gt 20 ] && { TRTFORGE_TC_UDOWN16=8 TRTFORGE_CHECKS=udown16 timeout $CT $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_u8.log 2>&1; echo "check u8 rc=$?"; grep -E "PASS|FAIL|passed" $O/check_u8.log | cut -c1-160; t; }
