#!/usr/bin/env bash
# Session 24 call 4: final rows of the session's default path (TC_PTOUCH on) beside the peer (carry .carry/s31: the
# binary — call 3's kernels plus two more TL_ON-only stamps in the o GEMV's combine prologue — and the kernel cache of
# TinyLlama fp16 / int4 / int8 / fp8, SmolLM2 fp16, and the TL_ON int4 / fp16 modules).
# (1) one `trtforge bench` fp16,int4,int8,fp8 at bs 1,8,64 (--isolate auto); SmolLM2 fp16 bs1;
# (2) the torch.compile peer's fp16 rows (scripts/torch_baseline.py) in the same lease;
# (3) with the time left: the tile trace of one bs1 step, int4 then fp16, with the prologue's new stamps (t3b: entered,
#     t3a: thread 0's (max, sum) back from L2).
set -uo pipefail
C=.carry/s31; B=$C/trtforge; D=docs/benchmarks/2026-12-02-h200-session24; R=$D/call4; O=/tmp/s31a; mkdir -p $O/raw
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }; left() { echo $(( 575 - $(date +%s) + T0 )); }
fin() { cp $R/run.sh $C/commit.txt $O/ 2>/dev/null; gzip -9 $O/raw/tt_*.csv 2>/dev/null; tar czf ${OUT:-/tmp}/s31a.tgz -C /tmp s31a; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; python3 -c "import torch;print('torch',torch.__version__)"; } > $O/env.txt 2>&1; cat $O/env.txt
timeout 170 $B bench --model preset:tinyllama-1.1b --precisions fp16,int4,int8,fp8 --batch-sizes 1,8,64 --input-lens 512 --output-len 128 --json $O/b_all.json > $O/b_all.log 2>&1
echo "b_all rc=$?"; grep -E "^\| (fp|int)|rror|isolat|child" $O/b_all.log | cut -c1-140; t
timeout 40 $B bench --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never --json $O/smollm2.json > $O/smollm2.log 2>&1
echo "smollm2 rc=$?"; grep -E "^\| (fp|int)|rror" $O/smollm2.log | cut -c1-140; t
CT=$(( $(left) - 10 )); [ $CT -gt 200 ] && CT=200; [ $CT -gt 60 ] && { PYTHONUNBUFFERED=1 timeout $CT python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 8 64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --eager-prefill --out $O/torch_peer_fp16.json > $O/torch_peer_fp16.log 2>&1; echo "peer fp16 rc=$?"; grep -E "decode|Error|error" $O/torch_peer_fp16.log | tail -8; t; }
for p in int4 fp16; do
  L=$(left); [ $L -lt 45 ] && break
  TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_TILES=1 TRTFORGE_TIMELINE_RAW=$O/raw timeout $(( L - 5 )) $B bench --model preset:tinyllama-1.1b --precisions $p --batch-sizes 1 --input-lens 512 --output-len 128 --isolate never > $O/tt_$p.log 2>&1
  echo "tt $p rc=$?"; for f in $O/raw/tt_*${p}*_bs1.csv; do [ -f "$f" ] && python3 $D/call1/osub.py "$f" > $O/osub_$p.txt 2>&1; done; cat $O/osub_$p.txt 2>/dev/null | tail -13; t
done
true
