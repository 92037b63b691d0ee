# Sourced by device-call scripts (docs/benchmarks/*/run*.sh) on the GPU machine, from the repository root:
#   NAME=s47 . scripts/gpu_bench_lib.sh
# Unpacks the carry `.carry/z/$NAME.tgz` (built here by `bash scripts/gpu_carry.sh NAME`) once into /tmp/cz, exports
# what the binary needs, and defines:
#   B        the trtforge binary;  R  the results folder ($OUT/r, tarred by the caller);
#   t        prints the seconds since sourcing;
#   bn NAME PRECISION BATCHES [ENV=VALUE ...]
#            one `bench` process (TinyLlama-shape preset, prompt 512, 128 new) with those variables, its JSON and log
#            under $R, and its table rows (a line with "compil" means a kernel module was not in the carried cache);
#   left     the seconds left of the call's deadline DL (default 540; set DL on its own line before sourcing, not
#            as a prefix of `.`, which bash undoes when the file returns) since sourcing;
#   ck NAME TIMEOUT [ENV=VALUE ...]
#            one `cuda-check --tiny tests/fixtures/tiny_llama` with those variables (e.g. TRTFORGE_CHECKS=attn), its log
#            $R/NAME.log, and its failures / verdict lines;
#   wqk [PATTERN [ENV=VALUE ...]]
#            the quantized decode GEMM's self-test (`TRTFORGE_CHECKS=wqk`) with those variables, its log $R/wqk.log,
#            and its verdict lines plus the case lines that match PATTERN (an extended regex; empty or left out: none);
#   peer NAME [ARG ...]
#            with more than 100 s left, the torch.compile peer (`scripts/torch_baseline.py ARG ... --out $R/NAME.json`)
#            until 15 s before the deadline, its log $R/NAME.log and its decode lines;
#   ncb NAME KERNELS SKIP COUNT "NCU-ARGS" PRECISION [--kv-cache KV]
#            with more than 40 s left, ncu (clocks and caches left alone) on COUNT launches of the kernels matching the
#            regex KERNELS after SKIP of them, inside one `bench` process as `bn`'s (batch 64), until 10 s before the
#            deadline; its CSV $R/NAME.csv, stderr $R/NAME.err, and each launch's duration / DRAM-bytes lines;
#   ncs NAME KERNELS SKIP PRECISION [--kv-cache KV]
#            with more than 60 s left, ncu's SourceCounters / WarpStateStats / InstructionStats (PC sampling every 32
#            cycles) of the one launch of the kernels matching KERNELS after SKIP, inside one `bench` process as
#            `ncb`'s, until 20 s before the deadline: the report $R/NAME.ncu-rep and its SASS source page (per
#            instruction: executed counts, stall samples) $R/NAME.sass.csv.
#   serve_pair
#            `serve` of the TinyLlama-shape preset as text (Llama's SentencePiece GGUF tokenizer, 2 GiB of KV blocks) on
#            --backend cuda (port 8123, 16 sequences) and --backend cpu (port 8124, 4) as background jobs %1 / %2 of
#            the calling shell, their logs $R/serve_cuda.log / serve_cpu.log, until both answer /health (150 s each);
#   table    #11 / #15's whole table (session 54 call B's workload, ≈ 560 s with the peer): the tiny fixture's paged
#            checks, bs1 at every precision and the SmolLM2-shape preset, bs8 fp16 / int4 / int8, bs64 at every precision
#            and fp8 + int8 KV (the carry needs `KV="int8" KVP="fp8"`), then the peer's fp16 at bs 1 / 8 / 64.
set -uo pipefail
: "${NAME:?set NAME to the name of the carry (.carry/z/NAME.tgz)}"
mkdir -p /tmp/cz
[ -x /tmp/cz/$NAME/trtforge ] || { tar xzf .carry/z/$NAME.tgz -C /tmp/cz && gunzip -f /tmp/cz/$NAME/trtforge.gz \
  && chmod +x /tmp/cz/$NAME/trtforge; } || exit 3
B=/tmp/cz/$NAME/trtforge; R=$OUT/r; mkdir -p $R
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/cz/$NAME/K
# The bench workload of every row and profile (TinyLlama-shape preset, prompt 512, 128 new): ncu's launches are the rows'.
TL=(bench --isolate never --model preset:tinyllama-1.1b --input-lens 512 --output-len 128)
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
DL=${DL:-540}; left() { echo $(( DL - ($(date +%s) - T0) )); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
bn() {
  local n=$1 p=$2 bs=$3; shift 3
  env "$@" timeout 80 $B "${TL[@]}" --precisions $p --batch-sizes $bs --json $R/$n.json > $R/$n.log 2>&1
  echo "$n rc=$? $(t)"; grep -E '^\| (fp|int)|rror|compil' $R/$n.log | cut -c1-140
}
tiny_check() {  # NAME TIMEOUT [ENV=VALUE ...]: the one cuda-check process of ck and wqk, its log and rc line
  local n=$1 to=$2; shift 2
  env "$@" timeout $to $B cuda-check --tiny tests/fixtures/tiny_llama > $R/$n.log 2>&1
  echo "$n rc=$? $(t)"
}
ck() {
  tiny_check "$@"; grep -E "FAIL|passed|rror" $R/$1.log | tail -4 | cut -c1-160
}
wqk() {
  local re="PASS|FAIL|rror|passed"; [ -n "${1:-}" ] && re="$1|$re"; [ $# -gt 0 ] && shift
  tiny_check wqk 120 TRTFORGE_CHECKS=wqk "$@"; grep -E "$re" $R/wqk.log | cut -c1-120
}
peer() {
  local n=$1; shift
  [ $(left) -gt 100 ] || return 0
  PYTHONUNBUFFERED=1 timeout $(( $(left) - 15 )) python3 scripts/torch_baseline.py "$@" --out $R/$n.json > $R/$n.log 2>&1
  echo "peer rc=$? $(t)"; grep -E "decode|rror" $R/$n.log | tail -4
}
ncb() {
  local n=$1 kn=$2 sk=$3 cnt=$4 m=$5; shift 5
  [ $(left) -gt 40 ] || return 0
  timeout $(( $(left) - 10 )) ncu --clock-control none --cache-control none --kernel-name regex:"$kn" \
    --launch-skip $sk --launch-count $cnt $m --csv $B "${TL[@]}" --precisions "$@" --batch-sizes 64 \
    > $R/$n.csv 2> $R/$n.err
  echo "$n rc=$? $(t)"; grep -E '"(gpu__time_duration.sum|dram__bytes_read.sum)"' $R/$n.csv | awk -F'","' '{print $5, $(NF-2), $NF}' | head -12
}
ncs() {
  local n=$1 kn=$2 sk=$3; shift 3
  [ $(left) -gt 60 ] || return 0
  timeout $(( $(left) - 20 )) ncu --clock-control none --cache-control none --kernel-name regex:"$kn" \
    --launch-skip $sk --launch-count 1 --section SourceCounters --section WarpStateStats --section InstructionStats \
    --warp-sampling-interval 0 -f -o $R/$n $B "${TL[@]}" --precisions "$@" --batch-sizes 64 > $R/$n.log 2>&1
  echo "$n rc=$? $(t)"
  ncu -i $R/$n.ncu-rep --page source --csv --print-source sass > $R/$n.sass.csv 2> $R/$n.sass.err
  echo "page rc=$? $(wc -l < $R/$n.sass.csv) lines"
}
serve_pair() {
  local M=(--model preset:tinyllama-1.1b --tokenizer tests/fixtures/llama_spm_vocab/ggml-vocab-llama-spm.gguf
           --kv-cache-memory 2GiB) u i
  $B serve "${M[@]}" --backend cuda --port 8123 --max-num-seqs 16 > $R/serve_cuda.log 2>&1 &
  $B serve "${M[@]}" --backend cpu --port 8124 --max-num-seqs 4 > $R/serve_cpu.log 2>&1 &
  for u in 8123 8124; do
    for i in $(seq 150); do curl -sf localhost:$u/health > /dev/null && break; sleep 1; done
    echo "$u up $(t)"
  done
}
table() {
  timeout 100 $B cuda-check --tiny tests/fixtures/tiny_llama --paged > $R/paged.log 2>&1
  echo "paged rc=$? $(t)"; grep -E "FAIL|passed|rror" $R/paged.log | tail -4 | cut -c1-140
  local p
  for p in fp16 int4 int8 fp8; do bn ${p}_1 $p 1 X=1; done
  (TL=("${TL[@]/preset:tinyllama-1.1b/preset:smollm2-135m}"); bn smol_1 fp16 1 X=1)  # bn's row, SmolLM2's shape
  for p in fp16 int4 int8; do bn ${p}_8 $p 8 X=1; done
  for p in fp16 int4 int8 fp8; do bn ${p}_64 $p 64 X=1; done
  bn fp8_k8_64 "fp8 --kv-cache int8" 64 X=1
  peer torch_peer --preset tinyllama-1.1b --precisions fp16 --batch-sizes 1 8 64 --input-lens 512 --output-len 128 \
    --runs 2 --warmup 1 --eager-prefill
}
