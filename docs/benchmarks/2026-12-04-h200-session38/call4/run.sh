#!/usr/bin/env bash
# Session 38 call 4: the default's row thresholds (wq::MIN_ROWS_INT4 = 24, MIN_ROWS_8BIT = 33) at the rows around them —
# int4 bs16 / 24 / 32 / 64 and int8 bs40 / 48 with the default and with TRTFORGE_WQ=0 (prompt 512, 128 new) — then the
# paged list `TRTFORGE_CHECKS=wqp` with TRTFORGE_WQ=0 under the quantized near-tie rule now also applied to "greedy among
# 63 others == alone" (call 3: prefix 14 of 16 for one prompt there, int4 g128, TRTFORGE_WQ=0 only).
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/s38.tgz -C /tmp/cz || exit 3
gunzip -f /tmp/cz/s38/trtforge.gz && chmod +x /tmp/cz/s38/trtforge
C=/tmp/cz/s38; B=$C/trtforge; R=/tmp/c4; mkdir -p $R
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=$C/K
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
trap "tar czf $OUT/c4.tgz -C /tmp c4" EXIT
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; cat $C/commit.txt; sha256sum $B; } | tee $R/env.txt
bn() { # name precision batches [env...]
  local n=$1 p=$2 bs=$3; shift 3
  env "$@" timeout 80 $B bench --isolate never --model preset:tinyllama-1.1b --precisions $p --batch-sizes $bs --input-lens 512 --output-len 128 --json $R/$n.json > $R/$n.log 2>&1
  echo "$n rc=$? $(t)"; grep -E '^\| (fp|int)|rror' $R/$n.log | cut -c1-120; }
bn i4 int4 16,24,32,64 X=1
bn i4_off int4 16,24,32,64 TRTFORGE_WQ=0
bn i8 int8 40,48 X=1
bn i8_off int8 40,48 TRTFORGE_WQ=0
TRTFORGE_WQ=0 TRTFORGE_CHECKS=wqp timeout 330 $B cuda-check --tinyllama --paged > $R/check_wqp0.log 2>&1
echo "check wqp (TRTFORGE_WQ=0) rc=$? $(t)"; grep -E "PASS|FAIL|passed|rror" $R/check_wqp0.log | cut -c1-300
t
