#!/usr/bin/env bash
# Session 23 call 3: final rows of the new default path beside the peer (carry .carry/s26: the binary with the session's
# two changes — the int4 g128 group scale after the mma (I4_POST) and the GEMVs' x loads without their predicate
# (TC_XCLAMP) — and the kernel cache of TinyLlama fp16 / int4 / int8 / fp8 and SmolLM2 fp16).
# (1) one `trtforge bench` fp16,int4,int8,fp8 at bs 1,8,64 (--isolate auto); SmolLM2 fp16 bs1;
# (2) the torch.compile peer's fp16 rows (scripts/torch_baseline.py) in the same lease;
# (3) the int8 / fp8 down-GEMV checks with the new default (int4 and fp16 ran with TC_XCLAMP in call 2).
set -uo pipefail
C=.carry/s26; B=$C/trtforge; R=docs/benchmarks/2026-12-02-h200-session23/call3; O=/tmp/s26a; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }; left() { echo $(( 575 - $(date +%s) + T0 )); }
fin() { cp $R/run.sh $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s26a.tgz -C /tmp s26a; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; python3 -c "import torch;print('torch',torch.__version__)"; } > $O/env.txt 2>&1; cat $O/env.txt
timeout 170 $B bench --model preset:tinyllama-1.1b --precisions fp16,int4,int8,fp8 --batch-sizes 1,8,64 --input-lens 512 --output-len 128 --json $O/b_all.json > $O/b_all.log 2>&1
echo "b_all rc=$?"; grep -E "^\| (fp|int)|rror|isolat|child" $O/b_all.log | cut -c1-140; t
timeout 40 $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never --json $O/smollm2.json > $O/smollm2.log 2>&1
echo "smollm2 rc=$?"; grep -E "^\| (fp|int)|rror" $O/smollm2.log | cut -c1-140; t
CT=$(( $(left) - 10 )); [ $CT -gt 200 ] && CT=200; [ $CT -gt 60 ] && { PYTHONUNBUFFERED=1 timeout $CT python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 8 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer_fp16.json > $O/torch_peer_fp16.log 2>&1; echo "peer fp16 rc=$?"; grep -E "decode|Error|error" $O/torch_peer_fp16.log | tail -8; t; }
ck() { local n=$1 lim=$2; shift 2; env "$@" timeout $lim $B cuda-check --tiny tests/fixtures/tiny_llama --tinyllama > $O/check_$n.log 2>&1
  echo "check $n rc=$?"; grep -E "PASS|FAIL|passed" $O/check_$n.log | cut -c1-170; t; }
L=$(left); [ $L -gt 60 ] && ck udown8 $(( L > 110 ? 100 : L - 5 )) TRTFORGE_CHECKS=udown8
L=$(left); [ $L -gt 60 ] && ck udownf8 $(( L - 5 )) TRTFORGE_CHECKS=udownf8
true
