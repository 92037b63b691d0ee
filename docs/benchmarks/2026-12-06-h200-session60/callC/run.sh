#!/usr/bin/env bash
# Session 60 call C: `serve --backend cuda` with the fused RoPE + KV append off (TRTFORGE_ATTN_ROPE=0) and on (the
# new default), two servers up at once, loaded one at a time, alternated: `bench serve` at concurrency 64 (the
# Shakespeare texts, 128 tokens each); a 64-token greedy completion alone and under load on each, compared across
# servers. Carry [".carry/z", "models/shakespeare"]: s59a (binary 715ebdf, whose paged default is main's; its K already
# holds this serve engine's module: `TRTFORGE_CUDA_PRECOMPILE=sm_90 trtforge serve ...` below answered "cached (0.0 s)").
DL=${DL:-300}
NAME=${NAME:-s59a} . scripts/gpu_bench_lib.sh
V=tests/fixtures/llama_spm_vocab/ggml-vocab-llama-spm.gguf
S=(serve --model preset:tinyllama-1.1b --tokenizer $V --backend cuda --max-num-seqs 64 --max-num-batched-tokens 2048)
trap 'tar czf $OUT/r.tgz -C $OUT r' EXIT
TRTFORGE_SERVE_PROFILE=1 TRTFORGE_ATTN_ROPE=0 $B "${S[@]}" --port 8041 > $R/serve_off.log 2>&1 & P1=$!
TRTFORGE_SERVE_PROFILE=1 $B "${S[@]}" --port 8042 > $R/serve_on.log 2>&1 & P2=$!
for p in 8041 8042; do for i in $(seq 360); do curl -sf localhost:$p/health >/dev/null && break; sleep 0.25; done; done; t
grep -hE "^(serving|warm-up|KV pool)|rror" $R/serve_*.log | cut -c1-240
req() { curl -s localhost:$1/v1/completions -H 'content-type: application/json' -d '{"model":"tinyllama-1.1b","prompt":"To be, or not to be, that is the question","max_tokens":64,"ignore_eos":true,"temperature":0}' \
  | python3 -c 'import json,sys;d=json.load(sys.stdin);print(json.dumps(d["choices"][0]["text"]))'; }
for x in off:8041 on:8042; do req ${x#*:} > $R/greedy_alone_${x%%:*}.txt; done
BS=(bench serve --concurrency 64 --num-prompts 1536 --texts models/shakespeare --output-tokens 128)
for i in 1 2 3; do for x in off:8041 on:8042; do n=${x%%:*}; p=${x#*:}
  [ $(left) -gt 40 ] || break 2
  ( sleep 1.0; req $p > $R/greedy_load_${n}_$i.txt ) & Q=$!
  timeout 40 $B "${BS[@]}" --url http://127.0.0.1:$p --out $R/c64_${n}_$i > $R/bench_c64_${n}_$i.log 2>&1
  echo "$n $i rc=$?"; wait $Q; grep -E "^concurrency|output tok" $R/bench_c64_${n}_$i.log | head -3 | cut -c1-220; t
done; done
for f in $R/greedy_*.txt; do cmp -s $R/greedy_alone_off.txt $f && echo "same as off alone: $(basename $f)" || echo "DIFFERS: $(basename $f)"; done | tee $R/outputs_check.txt
for x in off:8041:$P1 on:8042:$P2; do IFS=: read n p pid <<< "$x"
  curl -s localhost:$p/metrics | grep -E "^trtforge_(kv_blocks|num_requests|preemptions|engine_steps)" > $R/metrics_$n.txt
  kill $pid; echo "$n $(grep -E '^trtforge_kv_blocks_used ' $R/metrics_$n.txt) $(grep -E '^trtforge_preemptions_total' $R/metrics_$n.txt)"
done; wait; grep -hE "profile" $R/serve_*.log | tail -4 | cut -c1-300; t
