#!/usr/bin/env bash
# helper S (branch serve3), call 2: the committed defaults on fresh servers (no env), twice, vs the
# same + TRTFORGE_GEMM=lt TRTFORGE_GEMM_F16OUT=1, twice; a server with every serve default (no
# --kv-cache-memory: the new GPU default pool; --max-num-batched-tokens 512); cuda-check --paged
# with lt + f16 outputs. One tar: $OUT/serve3_call2.tgz.
set -uo pipefail
C=.carry/S; B=$C/trtforge; R=/tmp/s3c2; mkdir -p $R
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc TRTFORGE_SERVE_PROFILE=1
mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/run2.sh $R/ 2>/dev/null; tar czf ${OUT:-/tmp}/serve3_call2.tgz -C /tmp s3c2; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; $B --version; cat $C/commit.txt; } > $R/env.txt 2>&1; cat $R/env.txt
S="serve --model preset:tinyllama-1.1b --tokenizer $C/vocab.gguf --backend cuda --max-num-seqs 64 --max-num-batched-tokens 2048"
$B $S --port 8041 > $R/serve_D1.log 2>&1 & P1=$!
$B $S --port 8042 > $R/serve_D2.log 2>&1 & P2=$!
$B serve --model preset:tinyllama-1.1b --tokenizer $C/vocab.gguf --backend cuda --port 8045 > $R/serve_DD.log 2>&1 & P5=$!
( TRTFORGE_GEMM=lt TRTFORGE_GEMM_F16OUT=1 timeout 40 $B cuda-check --tiny tests/fixtures/tiny_llama --paged > $R/check_paged_ltf.log 2>&1; echo "rc=$?" >> $R/check_paged_ltf.log ) & PC=$!
sleep 2
TRTFORGE_GEMM=lt TRTFORGE_GEMM_F16OUT=1 $B $S --port 8043 > $R/serve_DL1.log 2>&1 & P3=$!
sleep 4
TRTFORGE_GEMM=lt TRTFORGE_GEMM_F16OUT=1 $B $S --port 8044 > $R/serve_DL2.log 2>&1 & P4=$!
for p in 8041 8042 8045 8043 8044; do for i in $(seq 240); do curl -sf localhost:$p/health >/dev/null && break; sleep 0.25; done; done; t
grep -hE "^(serving|warm-up|KV pool)" $R/serve_*.log | cut -c1-330
wait $PC; grep -E "FAIL|passed|rc=" $R/check_paged_ltf.log | tail -6; t
req() { curl -s localhost:$1/v1/completions -H 'content-type: application/json' -d "{\"model\":\"tinyllama-1.1b\",\"prompt\":\"To be, or not to be, that is the question\",\"max_tokens\":64,\"ignore_eos\":true,\"temperature\":0}" | python3 -c 'import json,sys;d=json.load(sys.stdin);print(json.dumps(d["choices"][0]["text"]))'; }
for p in 8041 8043 8045; do req $p > $R/greedy_alone_$p.txt; done
BS="bench serve --concurrency 64 --num-prompts 768 --texts $C/texts --output-tokens 128 --static-json $C/static_p72.json --static-json $C/static_p512.json --static-precision fp16"
for x in D1:8041 DL1:8043 D2:8042 DL2:8044 DD:8045; do n=${x%%:*}; p=${x#*:}
  ( sleep 1.0; req $p > $R/greedy_load_${n}_$p.txt ) & Q=$!
  timeout 30 $B $BS --url http://127.0.0.1:$p --out $R/c64_$n > $R/bench_c64_$n.log 2>&1
  wait $Q; echo "$n c64: $(grep -E '^concurrency' $R/bench_c64_$n.log | head -1)"; t
done
for f in $R/greedy_*.txt; do cmp -s $R/greedy_alone_8041.txt $f && echo "same as D1 alone: $(basename $f)" || echo "DIFFERS from D1 alone: $(basename $f)"; done | tee $R/outputs_check.txt
sleep 2.2
for x in D1:8041:$P1 D2:8042:$P2 DL1:8043:$P3 DL2:8044:$P4 DD:8045:$P5; do IFS=: read n p pid <<< "$x"
  curl -s localhost:$p/metrics | grep -E "^trtforge_(kv_blocks|num_requests|preemptions|engine_steps)" > $R/metrics_$n.txt
  kill $pid; echo "$n $(grep -E '^trtforge_kv_blocks_used ' $R/metrics_$n.txt) $(grep -E '^trtforge_preemptions_total' $R/metrics_$n.txt)"
done
python3 - <<EOF | tee $R/ratios.txt
import json,glob,os
st={72:40025.0,512:34113.0}  # static bs64 fp16 decode tok/s from call 1 (same binary's static path)
for f in sorted(glob.glob('$R/c64_*/serve_results.json')):
    l=json.load(open(f))['levels'][0]; n=os.path.basename(os.path.dirname(f))
    print('%-8s %8.0f output tok/s  x call-1 static decode p72 %.3f  p512 %.3f  TTFT p50/p99 %.1f/%.1f ms  ITL p50/p99 %.2f/%.2f ms  failed %d' % (n, l['output_tok_s'], l['output_tok_s']/st[72], l['output_tok_s']/st[512], l['ttft_ms']['p50'], l['ttft_ms']['p99'], l['itl_ms']['p50'], l['itl_ms']['p99'], l['failed']))
EOF
wait; t
