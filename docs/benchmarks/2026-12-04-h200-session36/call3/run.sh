#!/usr/bin/env bash
# Session 36 call 3: serve's decode steps vs the static engine's. Call 2 measured serve's graph decode steps at
# 1,265 µs (61.3 rows, bucket 64) against the static bs64 prompt-72 step of 1,183 µs. One known difference: the
# static engine runs decode passes of >= 32 rows through cuBLASLt (session 18, +1.6-2.4 % at bs64), paged engines
# did not. Binary: main f4188b0 + that gate removed (TRTFORGE_GEMM=cublas = the old paged behaviour).
# 1. cuda-check --tinyllama --paged (correctness of the paged engines with LT decode GEMMs)
# 2. static bs64 p72: static / TRTFORGE_KV=paged (the paged kernels, identity tables) with and without LT
# 3. fresh servers: LT (new default) vs cublas, c64 x 768 x 128, then each again; a --max-model-len 640 server.
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/sv2.tgz -C /tmp/cz && gunzip -f /tmp/cz/sv2/trtforge.gz && chmod +x /tmp/cz/sv2/trtforge
C=/tmp/cz/sv2; B=$C/trtforge; R=/tmp/sv3; mkdir -p $R
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=$C/K
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
trap "tar czf $OUT/sv3.tgz -C /tmp sv3" EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; date -u; cat $C/commit.txt; sha256sum $B; } | tee $R/env.txt
timeout 200 $B cuda-check --tinyllama --paged > $R/check_paged.log 2>&1; echo "check rc=$?"; grep -E "FAIL|passed" $R/check_paged.log | cut -c1-200; t
st() { # name [env...]
  local n=$1; shift
  env "$@" timeout 60 $B bench --isolate never --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 64 --input-lens 72 --output-len 128 --json $R/$n.json > $R/$n.log 2>&1
  echo "$n rc=$? $(grep -E '^\| fp16' $R/$n.log | cut -c1-120)"; }
st static X=1; st paged_lt TRTFORGE_KV=paged; st paged_cublas TRTFORGE_KV=paged TRTFORGE_GEMM=cublas; st static_cublas TRTFORGE_GEMM=cublas; t
export TRTFORGE_SERVE_PROFILE=1
S="serve --model preset:tinyllama-1.1b --tokenizer $C/vocab.gguf --backend cuda --max-num-seqs 64 --max-num-batched-tokens 2048"
$B $S --port 8041 > $R/serve_LT.log 2>&1 & P1=$!
TRTFORGE_GEMM=cublas $B $S --port 8042 > $R/serve_CB.log 2>&1 & P2=$!
$B $S --max-model-len 640 --port 8043 > $R/serve_LT640.log 2>&1 & P3=$!
for p in 8041 8042 8043; do for i in $(seq 240); do curl -sf localhost:$p/health >/dev/null && break; sleep 0.25; done; done; t
grep -hE "^(serving|warm-up)" $R/serve_*.log | cut -c1-200
req() { curl -s localhost:$1/v1/completions -H 'content-type: application/json' -d "{\"model\":\"tinyllama-1.1b\",\"prompt\":\"To be, or not to be, that is the question\",\"max_tokens\":64,\"ignore_eos\":true,\"temperature\":0}" | python3 -c 'import json,sys;d=json.load(sys.stdin);print(json.dumps(d["choices"][0]["text"]))'; }
for p in 8041 8042 8043; do req $p > $R/greedy_alone_$p.txt; done
BS="bench serve --concurrency 64 --num-prompts 768 --texts $C/texts --output-tokens 128 --static-json $R/static.json --static-precision fp16"
for x in LT:8041 CB:8042 LT640:8043 LT_2:8041 CB_2:8042; do n=${x%%:*}; p=${x#*:}
  ( sleep 1.0; req $p > $R/greedy_load_${n}_$p.txt ) & Q=$!
  timeout 40 $B $BS --url http://127.0.0.1:$p --out $R/c64_$n > $R/bench_c64_$n.log 2>&1
  wait $Q; echo "$n c64: $(grep -E '^concurrency' $R/bench_c64_$n.log | head -1 | cut -c1-160)"
done; t
for f in $R/greedy_*.txt; do cmp -s $R/greedy_alone_8042.txt $f && echo "same as CB alone: $(basename $f)" || echo "DIFFERS: $(basename $f)"; done | tee $R/outputs_check.txt
sleep 2.2
for x in LT:8041:$P1 CB:8042:$P2 LT640:8043:$P3; do IFS=: read n p pid <<< "$x"
  curl -s localhost:$p/metrics | grep -E "^trtforge_(kv_blocks|num_requests|preemptions|engine_steps)" > $R/metrics_$n.txt; kill $pid; done; wait
for n in LT CB LT640; do echo "== $n"; grep -E "^profile: cuda" $R/serve_$n.log | cut -c1-330; done; t
