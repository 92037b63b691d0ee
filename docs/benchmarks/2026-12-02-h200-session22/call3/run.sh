#!/usr/bin/env bash
# Session 22 call 3: final rows of the new default path beside the peer (carry .carry/s22c: the binary with the
# session's three changes — int4 `i4_word_pairs`, RS_LATE, int8 / fp8 `scpre` + `scpre8` by default — and the
# kernel cache of TinyLlama fp16 / int4 / int8 / fp8, SmolLM2 fp16, and TRTFORGE_TC_PF2=1 int8 / fp8).
# (1) one `trtforge bench` fp16,int4,int8,fp8 at bs 1,8,64 (--isolate auto); SmolLM2 fp16 bs1;
# (2) the torch.compile peer's fp16 rows (scripts/torch_baseline.py) in the same lease;
# (3) time left: TC_PF2 for int8 / fp8 now that their row scales come a tile early (session 21: −1.0 / −0.7 % without
#     scpre), alternating processes, bs 1 and 8.
set -uo pipefail
C=.carry/s22c; B=$C/trtforge; R=docs/benchmarks/2026-12-02-h200-session22/call3; O=/tmp/s22c; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }; left() { echo $(( 580 - $(date +%s) + T0 )); }
fin() { cp $R/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s22c.tgz -C /tmp s22c; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; python3 -c "import torch;print('torch',torch.__version__)"; } > $O/env.txt 2>&1; cat $O/env.txt
timeout 170 $B bench --model preset:tinyllama-1.1b --precisions fp16,int4,int8,fp8 --batch-sizes 1,8,64 --input-lens 512 --output-len 128 --json $O/b_all.json > $O/b_all.log 2>&1
echo "b_all rc=$?"; grep -E "^\| (fp|int)|rror|isolat|child" $O/b_all.log | cut -c1-140; t
timeout 40 $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never --json $O/smollm2.json > $O/smollm2.log 2>&1
echo "smollm2 rc=$?"; grep -E "^\| (fp|int)|rror" $O/smollm2.log | cut -c1-140; t
CT=$(( $(left) - 10 )); [ $CT -gt 60 ] && { PYTHONUNBUFFERED=1 timeout $CT python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 8 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer_fp16.json > $O/torch_peer_fp16.log 2>&1; echo "peer fp16 rc=$?"; grep -E "decode|Error|error" $O/torch_peer_fp16.log | tail -8; t; }
nb() { local n=$1; shift; env "${E[@]}" timeout 45 $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --isolate never --json $O/$n.json "$@" > $O/$n.log 2>&1
  echo "$n rc=$?"; grep -E "^\| (fp|int)|rror" $O/$n.log | cut -c1-120; t; }
for r in a b; do for p in int8 fp8; do
  [ $(left) -lt 50 ] && break 2
  E=(X=1); nb ${p}_def_$r --precisions $p --batch-sizes 1,8
  [ $(left) -lt 50 ] && break 2
  E=(TRTFORGE_TC_PF2=1); nb ${p}_pf2_$r --precisions $p --batch-sizes 1,8
done; done
