#!/usr/bin/env bash
# Session 29 call 3: TRTFORGE_GUD=1 is now the register-streaming fused launch (kernels.cu FD 2: no staged down weights,
# the gate/up GEMV's shared memory); =2 the call-2 kernel (FD 1, 113 KB of staged down weights a block). Call 2's
# timeline showed the FD-1 launch slowing o (+3.8 µs a layer) and itself (24.9 vs 12.5 + 7.6 µs), even without its
# down loads (GUD_MODE=2): a shared-memory footprint / carveout effect is the suspect, hence FD 2 and `co100`.
# (1) TinyLlama fp16 bs1 GUD 0 / 1 twice; (2) SmolLM2 GUD 0 / 1; (3) TRTFORGE_CHECKS=gud with GUD=1; (4) GUD 2 with
# every kernel's carveout at 100 % (default+co100); (5) the timeline of GUD=1.
set -uo pipefail
C=.carry/s29c; B=$C/trtforge; O=/tmp/s29c; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/K/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }
fin() { cp $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s29c.tgz -C /tmp s29c; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
R() { local tag=$1 lim=$2; shift 2; timeout $lim "$@" > $O/$tag.log 2>&1; echo "$tag rc=$?"; grep -E "^\| (fp|int)|rror|eager decode step|PASS|FAIL|passed|failed|rep2" $O/$tag.log | cut -c1-300; t; }
TB="$B bench --isolate never --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128 --model"
for r in 1 2; do
  TRTFORGE_GUD=0 R tl_off$r 50 $TB preset:tinyllama-1.1b --json $O/tl_off$r.json
  TRTFORGE_GUD=1 R tl_on$r 50 $TB preset:tinyllama-1.1b --json $O/tl_on$r.json
done
TRTFORGE_GUD=0 R sm_off 40 $TB preset:smollm2-135m --json $O/sm_off.json
TRTFORGE_GUD=1 R sm_on 40 $TB preset:smollm2-135m --json $O/sm_on.json
TRTFORGE_GUD=1 TRTFORGE_CHECKS=gud R chk 120 $B cuda-check --tiny tests/fixtures/tiny_llama
TRTFORGE_GUD=2 TRTFORGE_BS1=default+co100 R tl_fd1_co100 50 $TB preset:tinyllama-1.1b --json $O/tl_fd1_co100.json
TRTFORGE_TIMELINE=1 TRTFORGE_GUD=1 R tlx_on 50 $TB preset:tinyllama-1.1b
true
