#!/usr/bin/env bash
# Prepared in session 18 for the next lease (carry .carry/s18n: HEAD's stripped binary + TinyLlama fp16 kernel cache):
# (1) why a second engine in one process decodes slower: fp16 twice with --isolate never and the in-graph timeline of
#     both loads (TRTFORGE_TIMELINE=1: our kernels and the gaps around cuBLASLt's, per kind, bs64);
# (2) the cuBLASLt decode threshold: TRTFORGE_LT_DECODE_ROWS=16 / 24 / 32 (default) / 99999 (off) at bs 16, 24, 32;
# (3) prefill through cuBLASLt (TRTFORGE_PREFILL_LT=1) against the default: TTFT at bs 1 / 16 / 64.
set -uo pipefail
C=.carry/s18n; B=$C/trtforge; O=/tmp/s19a; mkdir -p $O/raw
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s19a.tgz -C /tmp s19a; }
trap fin EXIT
nb() { local n=$1; shift; env "${E[@]}" timeout 120 $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --json $O/$n.json "$@" > $O/$n.log 2>&1
  echo "$n rc=$?"; grep -E "^\| (fp|int)|rror" $O/$n.log | cut -c1-140; t; }
E=(TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_RAW=$O/raw); nb two_tl --precisions fp16,fp16 --batch-sizes 64 --isolate never
for r in 16 24 32 99999; do E=(TRTFORGE_LT_DECODE_ROWS=$r); nb lt_rows_$r --precisions fp16 --batch-sizes 16,24,32; done
E=(X=1); nb pf_def --precisions fp16 --batch-sizes 1,16,64 --runs 5
E=(TRTFORGE_PREFILL_LT=1); nb pf_lt --precisions fp16 --batch-sizes 1,16,64 --runs 5
# (4) `bench --engine-dirs` (host loop: one forward_greedy + sync per step, ITL per step) against the roofline rows above
#     (on-GPU greedy loop): the engine dir converted here from the same preset (model.onnx 2.2 GB, not needed by cuda).
mkdir -p /tmp/eng_tl; cat > /tmp/eng_tl/tl_fp16.yaml <<'YAML'
name: tl_fp16
output_dir: /tmp/eng_tl/tl_fp16
model: {path: "preset:tinyllama-1.1b", seed: 0}
quantization: {precision: fp16}
build: {max_batch_size: 64, max_input_len: 512, max_seq_len: 640, opt_batch_size: 1}
YAML
timeout 200 $B convert --config /tmp/eng_tl/tl_fp16.yaml > $O/convert.log 2>&1; echo "convert rc=$?"; t
timeout 200 $B bench --engine-dirs /tmp/eng_tl/tl_fp16 --backends cuda --batch-sizes 1,8,64 --input-lens 512 --output-len 128 --runs 2 --warmup 1 --out $O/rep_dirs > $O/bench_dirs.log 2>&1
echo "bench dirs rc=$?"; python3 -c "
import json;d=json.load(open('$O/rep_dirs/results.json'))
for r in d['speed']: print(r['batch'], r['status'], r.get('decode_tok_s'), r.get('ttft_ms'))"; t
