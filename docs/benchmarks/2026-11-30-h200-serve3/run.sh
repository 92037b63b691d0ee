#!/usr/bin/env bash
# helper S (branch serve3), the one GPU call of session 5. Servers (same binary, env switches):
#   O   = the old loop: no warm-up, exact GEMM rows, one step in flight (TRTFORGE_SERVE_WARMUP=0
#         TRTFORGE_SERVE_GEMM_PAD=0 TRTFORGE_SERVE_AHEAD=0)
#   N   = warm-up at start + bucketed GEMM rows, AHEAD=0
#   NA  = N + TRTFORGE_SERVE_AHEAD=1 (next decode step queued ahead, mixed steps in flight)
#   NL  = NA + TRTFORGE_GEMM=lt (cuBLASLt, algorithms timed per shape at warm-up)
#   NLF = NL + TRTFORGE_GEMM_F16OUT=1
# each measured FRESH with bench serve c64 x 768 (then NA, O again), TTFT at half saturation,
# greedy alone vs under load, /metrics at the end; then the 8-bit-KV admission run (fp16 vs fp8 at
# the same --kv-cache-memory) beside cuda-check --paged; then the static bench (prompt 72 and 512).
set -uo pipefail
C=.carry/S; B=$C/trtforge; R=/tmp/s3; mkdir -p $R
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc TRTFORGE_SERVE_PROFILE=1
mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/run.sh $R/ 2>/dev/null; tar czf ${OUT:-/tmp}/serve3.tgz -C /tmp s3; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; $B --version; cat $C/commit.txt; } > $R/env.txt 2>&1; cat $R/env.txt
S="serve --model preset:tinyllama-1.1b --tokenizer $C/vocab.gguf --backend cuda --max-num-seqs 64 --max-num-batched-tokens 2048 --kv-cache-memory 8GiB"
TRTFORGE_SERVE_WARMUP=0 TRTFORGE_SERVE_GEMM_PAD=0 TRTFORGE_SERVE_AHEAD=0 $B $S --port 8020 > $R/serve_O.log 2>&1 & PO=$!
TRTFORGE_SERVE_AHEAD=0 $B $S --port 8021 > $R/serve_N.log 2>&1 & PN=$!
TRTFORGE_SERVE_AHEAD=1 $B $S --port 8022 > $R/serve_NA.log 2>&1 & PNA=$!
A="serve --model preset:tinyllama-1.1b --tokenizer $C/vocab.gguf --backend cuda --max-num-seqs 256 --max-num-batched-tokens 2048 --kv-cache-memory 110MiB"
TRTFORGE_SERVE_WARMUP=0 $B $A --port 8030 > $R/serve_adm_fp16.log 2>&1 & P16=$!
TRTFORGE_SERVE_WARMUP=0 $B $A --kv-cache fp8 --port 8031 > $R/serve_adm_fp8.log 2>&1 & P8=$!
sleep 2   # the lt servers time GEMM algorithms at warm-up: not beside each other
TRTFORGE_SERVE_AHEAD=1 TRTFORGE_GEMM=lt $B $S --port 8023 > $R/serve_NL.log 2>&1 & PNL=$!
sleep 5
TRTFORGE_SERVE_AHEAD=1 TRTFORGE_GEMM=lt TRTFORGE_GEMM_F16OUT=1 $B $S --port 8024 > $R/serve_NLF.log 2>&1 & PNLF=$!
for p in 8020 8021 8022 8030 8031 8023 8024; do for i in $(seq 240); do curl -sf localhost:$p/health >/dev/null && break; sleep 0.25; done; done; t
grep -hE "^(serving|warm-up)" $R/serve_*.log | cut -c1-330
req() { curl -s localhost:$1/v1/completions -H 'content-type: application/json' -d "{\"model\":\"tinyllama-1.1b\",\"prompt\":\"To be, or not to be, that is the question\",\"max_tokens\":64,\"ignore_eos\":true,$2}" | python3 -c 'import json,sys;d=json.load(sys.stdin);print(json.dumps(d["choices"][0]["text"]))'; }
G='"temperature":0'; K='"temperature":0.8,"top_k":40,"seed":9'
for p in 8020 8021 8022 8023 8024; do req $p "$G" > $R/greedy_alone_$p.txt; req $p "$K" > $R/topk_alone_$p.txt; done
BS="bench serve --concurrency 64 --num-prompts 768 --texts $C/texts --output-tokens 128 --static-json $C/static_p72.json --static-json $C/static_p512.json --static-precision fp16"
for x in N:8021 O:8020 NA:8022 NL:8023 NLF:8024 NA2:8022 O2:8020; do n=${x%%:*}; p=${x#*:}
  ( sleep 1.0; req $p "$G" > $R/greedy_load_${n}_$p.txt; req $p "$K" > $R/topk_load_${n}_$p.txt ) & Q=$!
  timeout 30 $B $BS --url http://127.0.0.1:$p --out $R/c64_$n > $R/bench_c64_$n.log 2>&1
  wait $Q; echo "$n c64: $(grep -E '^concurrency' $R/bench_c64_$n.log | head -1)"; grep -E "× the static" $R/bench_c64_$n.log | head -2 | cut -c1-200; t
done
for f in $R/greedy_load_*.txt $R/greedy_alone_*.txt; do cmp -s $R/greedy_alone_8020.txt $f && echo "same as O alone: $(basename $f)" || echo "DIFFERS from O alone: $(basename $f)"; done | tee $R/outputs_check.txt
for f in $R/topk_load_*.txt $R/topk_alone_*.txt; do cmp -s $R/topk_alone_8020.txt $f && echo "same as O alone: $(basename $f)" || echo "DIFFERS from O alone: $(basename $f)"; done | tee -a $R/outputs_check.txt
RATE=$(python3 -c "import json;print(round(json.load(open('$R/c64_NA/serve_results.json'))['levels'][0]['request_throughput']/2,1))"); echo "half saturation (NA c64 req/s / 2): $RATE"
for x in NA:8022 N:8021; do n=${x%%:*}; p=${x#*:}
  timeout 20 $B bench serve --url http://127.0.0.1:$p --request-rates $RATE --num-prompts 512 --texts $C/texts --output-tokens 128 --warmup 0 --out $R/half_$n > $R/bench_half_$n.log 2>&1
  echo "$n rate $RATE: $(grep -E '^rate' $R/bench_half_$n.log | head -1)"; t
done
sleep 2.2
for x in O:8020:$PO N:8021:$PN NA:8022:$PNA NL:8023:$PNL NLF:8024:$PNLF; do IFS=: read n p pid <<< "$x"
  curl -s localhost:$p/metrics | grep -E "^trtforge_(kv_blocks_used|num_requests|preemptions|prefix|engine_steps)" > $R/metrics_$n.txt
  kill $pid; echo "$n $(grep -E '^trtforge_kv_blocks_used ' $R/metrics_$n.txt)"
done
wait $PO $PN $PNA $PNL $PNLF 2>/dev/null; t
echo "== admission (fp16 vs fp8 KV, 110 MiB each) beside cuda-check --paged"
( timeout 40 $B cuda-check --tiny tests/fixtures/tiny_llama --paged > $R/check_paged.log 2>&1; echo "rc=$?" >> $R/check_paged.log ) & PC=$!
for x in fp16:8030:$P16 fp8:8031:$P8; do IFS=: read n p pid <<< "$x"
  ( while :; do echo "$(date +%s.%N) $(curl -s localhost:$p/metrics | grep -E '^trtforge_(num_requests_running|num_requests_waiting|kv_blocks_used|preemptions_total) ' | tr '\n' ' ')"; sleep 0.05; done ) > $R/poll_$n.txt 2>/dev/null & PP=$!
  timeout 40 $B bench serve --url http://127.0.0.1:$p --concurrency 256 --num-prompts 512 --texts $C/texts --output-tokens 128 --warmup 0 --out $R/adm_$n > $R/bench_adm_$n.log 2>&1
  kill $PP; sleep 0.3
  curl -s localhost:$p/metrics | grep -E "^trtforge_" | grep -v _bucket > $R/metrics_adm_$n.txt
  echo "$n: $(grep -E '^concurrency' $R/bench_adm_$n.log | head -1)"
  grep -E "^trtforge_(kv_blocks_total|kv_blocks_used_max|num_requests_running_max|preemptions_total|kv_blocks_used) " $R/metrics_adm_$n.txt | tr '\n' ' '; echo
  python3 -c "
import re,sys
r=[float(m.group(1)) for l in open('$R/poll_$n.txt') for m in [re.search(r'trtforge_num_requests_running (\S+)',l)] if m]
busy=[x for x in r if x>0]
print('$n polled running: max %d, mean while busy %.1f over %d samples' % (max(r or [0]), sum(busy)/max(len(busy),1), len(busy)))" | tee -a $R/admission.txt
  kill $pid
done
t; wait $PC; grep -E "FAIL|passed|rc=" $R/check_paged.log | tail -8; t
echo "== static bench (prompt 72 and 512, bs64 fp16)"
timeout 70 $B bench --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 64 --input-lens 72,512 --output-len 128 --json $R/static.json > $R/static.log 2>&1; echo rc=$?; grep -E "^\| fp16" $R/static.log; t
python3 - <<EOF | tee $R/ratios.txt
import json,glob,os
d=json.load(open('$R/static.json'))
st={r['input_len']:[x for x in r['rows'] if x['batch']==64 and x['precision']=='fp16'][0] for r in d['runs']}
for L,x in sorted(st.items()): print('static p%d bs64 fp16: decode %.0f tok/s, TTFT %.2f ms' % (L, x['decode_tok_s'], x['ttft_ms']))
for f in sorted(glob.glob('$R/c64_*/serve_results.json')):
    l=json.load(open(f))['levels'][0]; n=os.path.basename(os.path.dirname(f))
    print('%-8s %8.0f output tok/s  x static decode p72 %.3f  p512 %.3f  TTFT p50/p99 %.1f/%.1f ms  ITL p50/p99 %.2f/%.2f ms' % (n, l['output_tok_s'], l['output_tok_s']/st[72]['decode_tok_s'], l['output_tok_s']/st[512]['decode_tok_s'], l['ttft_ms']['p50'], l['ttft_ms']['p99'], l['itl_ms']['p50'], l['itl_ms']['p99']))
EOF
t; ls -la $R | head -80
