#!/usr/bin/env bash
# Session 36 call 4: attn_decode_cx / cx8 on 8-bit KV caches (branch cxq: the codes turned into the
# transposed tile step's fragments in registers; the bs64 default for int8 / fp8 caches in place of
# session 12's attn_decode_cl8, TRTFORGE_ATTN=cl8 runs the old one). Checks first (the new cxq list with
# one block walking each whole sequence, then the attn list with clusters), then bs64 rows alternated.
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/cq.tgz -C /tmp/cz && gunzip -f /tmp/cz/cq/trtforge.gz && chmod +x /tmp/cz/cq/trtforge
C=/tmp/cz/cq; B=$C/trtforge; R=/tmp/cq; mkdir -p $R
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=$C/K
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
trap "tar czf $OUT/cq.tgz -C /tmp cq" EXIT
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; cat $C/commit.txt; sha256sum $B; } | tee $R/env.txt
ck() { # name [env...]
  local n=$1; shift
  env "$@" timeout 150 $B cuda-check --tinyllama > $R/check_$n.log 2>&1; echo "check $n rc=$? $(t)"
  grep -E "FAIL|passed" $R/check_$n.log | cut -c1-230; }
ck cxq8 TRTFORGE_ATTN=cx8all TRTFORGE_ATTN_CS=1 TRTFORGE_CHECKS=cxq
ck cxq4 TRTFORGE_ATTN=cxall TRTFORGE_ATTN_CS=1 TRTFORGE_CHECKS=cxq
ck cxq_cl8 TRTFORGE_ATTN=cl8all TRTFORGE_ATTN_CS=1 TRTFORGE_CHECKS=cxq   # the same list on session 12's kernel (twin)
ck attn8 TRTFORGE_ATTN=cx8all TRTFORGE_CHECKS=attn
bn() { # name precision kv input_len [env...]
  local n=$1 p=$2 kv=$3 il=$4; shift 4
  env "$@" timeout 90 $B bench --isolate never --model preset:tinyllama-1.1b --precisions $p --kv-cache $kv --batch-sizes 64 --input-lens $il --output-len 128 --max-model-len 4096 --json $R/$n.json > $R/$n.log 2>&1
  echo "$n rc=$? $(t) $(grep -E '^\| fp|rror' $R/$n.log | cut -c1-150)"; }
bn f16_512 fp16 fp16 512 X=1
bn fp8kv_512 fp16 fp8 512 X=1; bn fp8kv_cl8_512 fp16 fp8 512 TRTFORGE_ATTN=cl8
bn i8kv_512 fp16 int8 512 X=1; bn i8kv_cl8_512 fp16 int8 512 TRTFORGE_ATTN=cl8
bn fp8kv_512b fp16 fp8 512 X=1; bn fp8kv_cl8_512b fp16 fp8 512 TRTFORGE_ATTN=cl8; bn f16_512b fp16 fp16 512 X=1
bn w8fp8kv_512 fp8 fp8 512 X=1
bn f16_4k fp16 fp16 3968 X=1; bn fp8kv_4k fp16 fp8 3968 X=1; bn fp8kv_cl8_4k fp16 fp8 3968 TRTFORGE_ATTN=cl8
t
