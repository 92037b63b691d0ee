#!/usr/bin/env bash
# Prepared in session 19 for the next lease (carry .carry/s19n: HEAD's stripped binary + the kernel cache of the default
# modules (TinyLlama fp16 / int4 / int8 / fp8, SmolLM2 fp16) and of the TRTFORGE_TC_UDOWN builds (int4 3, int8 / fp8 6)).
# From session 19's one-row phases (README): down spends 3.6 µs (int4) / 2.9 µs (int8) from its wait to the end of its
# one tile's mmas, with a second round of weight loads after the wait; o's combine prologue takes 2.85 µs.
# (1) TRTFORGE_TC_UDOWN (all of down's k-steps in one round of loads before the wait): separate processes alternating
#     default / switch / default / switch, bs 1 and 8 (tokens must equal the default's: same sums in the same order);
# (2) the o combine's knobs in one process (TRTFORGE_BS1_AB): fewer attention splits (ns2: half the records), other
#     cluster sizes for the combine (ocl4 / ocl16), two tiles per o block (tcc2: half the blocks copy records).
set -uo pipefail
C=.carry/s19n; B=$C/trtforge; O=/tmp/s20a; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/kcache/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s20a.tgz -C /tmp s20a; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
nb() { local n=$1; shift; env "${E[@]}" timeout 90 $B bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --isolate never --json $O/$n.json "$@" > $O/$n.log 2>&1
  echo "$n rc=$?"; grep -E "^\| (fp|int)|rror" $O/$n.log | cut -c1-120; t; }
for p in int4:3 int8:6 fp8:6; do f=${p%%:*}; u=${p##*:}
  for r in a b; do
    E=(X=1); nb ${f}_def_$r --precisions $f --batch-sizes 1,8
    E=(TRTFORGE_TC_UDOWN=$u); nb ${f}_u${u}_$r --precisions $f --batch-sizes 1,8
  done
done
for p in int4 fp16; do
  E=(TRTFORGE_BS1_AB=default,default+ns2,default+ocl4,default+ocl16,default+tcc2,default); nb ${p}_ocomb --precisions $p --batch-sizes 1
  grep -E "variant" $O/${p}_ocomb.log | sed 's/^.*\(bs[0-9]* variant\)/\1/' | cut -c1-150
done
