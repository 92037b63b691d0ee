#!/usr/bin/env bash
# helper S (branch serve2), call 2: A = old loop (TRTFORGE_SERVE_AHEAD=0), B = steps queued ahead +
# mixed steps left in flight (AHEAD=1), D = B with --max-num-batched-tokens 8192; 64 streams x 1280
# requests each (A again at the end for run-to-run noise), TTFT at half saturation on B, outputs
# alone vs under load. Everything ends in one tar.
set -uo pipefail
C=.carry/serve2; B=$C/trtforge; O=${OUT:-/tmp/out}; R=/tmp/r2; mkdir -p $O $R
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc TRTFORGE_SERVE_PROFILE=1
mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
{ nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv,noheader; date -u; $B --version; cat $C/commit.txt; } > $R/env.txt 2>&1; cat $R/env.txt
S="serve --model preset:tinyllama-1.1b --tokenizer $C/vocab.gguf --backend cuda --max-num-seqs 64"
TRTFORGE_SERVE_AHEAD=0 $B $S --max-num-batched-tokens 2048 --port 8011 --kv-cache-memory 4GiB > $R/serve_A.log 2>&1 & PA=$!
TRTFORGE_SERVE_AHEAD=1 $B $S --max-num-batched-tokens 2048 --port 8012 --gpu-memory-utilization 0.3 > $R/serve_B.log 2>&1 & PB=$!
TRTFORGE_SERVE_AHEAD=1 $B $S --max-num-batched-tokens 8192 --port 8014 --kv-cache-memory 4GiB > $R/serve_D.log 2>&1 & PD=$!
for p in 8011 8012 8014; do for i in $(seq 240); do curl -sf localhost:$p/health >/dev/null && break; sleep 0.25; done; done; t
head -1 $R/serve_*.log | cut -c1-200
req() { curl -s localhost:$1/v1/completions -H 'content-type: application/json' -d "{\"model\":\"tinyllama-1.1b\",\"prompt\":\"To be, or not to be, that is the question\",\"max_tokens\":64,\"ignore_eos\":true,$2}" | python3 -c 'import json,sys;d=json.load(sys.stdin);print(json.dumps(d["choices"][0]["text"]))'; }
G='"temperature":0'; P='"temperature":0.8,"top_p":0.9,"seed":7'; K='"temperature":0.8,"top_k":40,"seed":9'
for p in 8011 8012 8014; do req $p "$G" > $R/greedy_alone_$p.txt; req $p "$P" > $R/sampled_alone_$p.txt; req $p "$K" > $R/topk_alone_$p.txt; done
BS="bench serve --concurrency 64 --num-prompts 1280 --texts $C/texts --output-tokens 128 --static-json $C/static_p72.json --static-json $C/static_p512.json --static-precision fp16"
for x in A:8011 B:8012 D:8014 A2:8011; do n=${x%%:*}; p=${x#*:}
  ( sleep 1.0; req $p "$G" > $R/greedy_load_$p.txt; req $p "$P" > $R/sampled_load_$p.txt; req $p "$K" > $R/topk_load_$p.txt ) & Q=$!
  timeout 40 $B $BS --url http://127.0.0.1:$p --out $R/c64_$n > $R/bench_c64_$n.log 2>&1
  wait $Q; echo "$n c64: $(grep -E '^concurrency' $R/bench_c64_$n.log | head -1)"; grep -E "× the static" $R/bench_c64_$n.log | head -2 | cut -c1-260; t
done
for p in 8011 8012 8014; do for k in greedy sampled topk; do cmp -s $R/${k}_alone_8011.txt $R/${k}_alone_$p.txt && cmp -s $R/${k}_alone_$p.txt $R/${k}_load_$p.txt && echo "$k $p same as A alone" || echo "$k $p DIFFERS"; done; done | tee $R/outputs_check.txt
RATE=$(python3 -c "import json;print(round(json.load(open('$R/c64_B/serve_results.json'))['levels'][0]['request_throughput']/2,1))"); echo "half saturation (B c64 req/s / 2): $RATE"
timeout 20 $B bench serve --url http://127.0.0.1:8012 --request-rates $RATE --num-prompts 512 --texts $C/texts --output-tokens 128 --warmup 0 --out $R/half_B > $R/bench_half_B.log 2>&1
echo "B rate $RATE: $(grep -E '^rate' $R/bench_half_B.log | head -1)"; t
for x in A:8011:$PA B:8012:$PB D:8014:$PD; do IFS=: read n p pid <<< "$x"
  curl -s localhost:$p/metrics | grep -E "^trtforge_(kv_blocks_used|num_requests)" > $R/metrics_$n.txt
  kill $pid; wait $pid; grep -E "blocks_used" $R/metrics_$n.txt
done
t; tar czf $O/serve2_call2.tar.gz -C /tmp r2; cp $R/outputs_check.txt $O/; ls -la $O
