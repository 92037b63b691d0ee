#!/usr/bin/env bash
# Session 38 call 1: what `TRTFORGE_WQ=1` needs before it can be the default for int8 / int4 g128 / fp8 engines on
# cc 9.0 — its whole static check list (`TRTFORGE_CHECKS=wq`: TinyLlama-shape batched decode steps of 40 and 12 rows,
# int8 / int4 g128 / fp8 logits vs the CPU reference, int8 greedy tokens; session 37 call 10 cut it at 150 s) and the new
# paged list (`TRTFORGE_CHECKS=wqp`: TinyLlama int4 g128 and int8 weights through the block tables, 64 sequences in
# decode steps of up to 64 rows, vs the static engine and the CPU reference). Both lists are CPU-reference bound (16
# cores), so they run side by side.
set -uo pipefail
mkdir -p /tmp/cz; tar xzf .carry/z/s38.tgz -C /tmp/cz || exit 3
gunzip -f /tmp/cz/s38/trtforge.gz && chmod +x /tmp/cz/s38/trtforge
C=/tmp/cz/s38; B=$C/trtforge; R=/tmp/c1; mkdir -p $R
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=$C/K
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
trap "tar czf $OUT/c1.tgz -C /tmp c1" EXIT
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; cat $C/commit.txt; sha256sum $B; } | tee $R/env.txt
( TRTFORGE_WQ=1 TRTFORGE_CHECKS=wq timeout 540 $B cuda-check --tinyllama > $R/check_wq.log 2>&1; echo "check wq rc=$? $(t)" > $R/wq.rc ) &
( TRTFORGE_WQ=1 TRTFORGE_CHECKS=wqp timeout 540 $B cuda-check --tinyllama --paged > $R/check_wqp.log 2>&1; echo "check wqp rc=$? $(t)" > $R/wqp.rc ) &
wait
cat $R/wq.rc; grep -E "PASS|FAIL|passed|rror" $R/check_wq.log | cut -c1-240
cat $R/wqp.rc; grep -E "PASS|FAIL|passed|rror" $R/check_wqp.log | cut -c1-240
t
