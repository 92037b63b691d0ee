# Sourced by run_a.sh / run_b.sh / run_c.sh (prepared in session 39, NOT RUN): unpacks the carry (.carry/z/s39.tgz: the
# stripped release binary of the commit in s39/commit.txt (5745f20) and its NVRTC cache K with the TinyLlama modules
# precompiled for sm_90: int4 / int8 / fp8 / fp16 static (the `wq` check list uses the same ones), the `wqp` list's
# paged int4 / int8), and defines bn (one bench process; a log line with "compil" means a module was NOT in K).
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/s39.tgz -C /tmp/cz || exit 3
gunzip -f /tmp/cz/s39/trtforge.gz && chmod +x /tmp/cz/s39/trtforge
B=/tmp/cz/s39/trtforge; R=/tmp/r; mkdir -p $R
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/cz/s39/K
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
bn() { # name precision batches [env...]
  local n=$1 p=$2 bs=$3; shift 3
  env "$@" timeout 80 $B bench --isolate never --model preset:tinyllama-1.1b --precisions $p --batch-sizes $bs \
    --input-lens 512 --output-len 128 --json $R/$n.json > $R/$n.log 2>&1
  echo "$n rc=$? $(t)"; grep -E '^\| (fp|int)|rror|compil' $R/$n.log | cut -c1-140; }
