#!/usr/bin/env bash
# Prepared in session 54 for the next lease, NOT RUN. Carries [".carry/z", ".carry/f"]:
#   .carry/z/$CARRY.tgz   `bash scripts/gpu_carry.sh s55` (the final code; ≈ 5–10 min here)
#   .carry/f/attn_fp16.cubin   the fp16 module the bench row caches:
#     rm -rf /tmp/k1 && TRTFORGE_CACHE_DIR=/tmp/k1 TRTFORGE_CUDA_PRECOMPILE=sm_90 LD_LIBRARY_PATH=/tmp/nvrtc/x/nvidia/cu13/lib \
#       target/release/trtforge bench --isolate never --model preset:tinyllama-1.1b --precisions fp16 --batch-sizes 64 \
#       --input-lens 512 --output-len 128; mkdir -p .carry/f && cp /tmp/k1/*.cubin .carry/f/attn_fp16.cubin
# ≈ 250 s. Session 54 call F ran the engine's attn_decode_cx8 alone at 11.6 µs (513 keys) where the step spends
# ≈ 19–20 µs a layer on it. Confirm or refute it:
#  1. the probe with --check: its output against numpy at 513 / 576 / 640 keys (is the launch doing the whole work?);
#     then with the caches as one buffer (--onebuf, as the engine allocates them) and after a gate/up-sized GEMM before
#     each launch (--gemm: the attention's share after the GEMMs alone are subtracted);
#  2. ncu on three of the probe's attention launches: duration and DRAM bytes read (33.6 MB at 513 keys if every
#     byte comes from DRAM);
#  3. ncu on three attention launches of the engine's fp16 bs64 step: the same two metrics.
# If 1–2 hold and 3 reads the same bytes in more time, the difference is the engine's context (allocation, the kernels
# before it, clocks, carveout, contents): bisect it from the probe's side (1's --onebuf and --gemm are the first two
# cuts).
DL=${DL:-400}
NAME=${CARRY:-s55} . scripts/gpu_bench_lib.sh
P=docs/benchmarks/2026-12-06-h200-session54/callF/attnprobe.py
for v in "check --check" "onebuf --check --onebuf" "gemm --onebuf --gemm"; do
  set -- $v; n=$1; shift
  timeout 90 python3 $P .carry/f/attn_fp16.cubin $R/attnprobe_$n.json "$@" > $R/attnprobe_$n.log 2>&1
  echo "attnprobe $n rc=$? $(t)"; cut -c1-200 $R/attnprobe_$n.log
done
M=gpu__time_duration.sum,dram__bytes_read.sum,lts__t_sector_hit_rate.pct
timeout 150 ncu --clock-control none --cache-control none --kernel-name attn_decode_cx8 --launch-skip 40 --launch-count 3 \
  --metrics $M --csv python3 $P .carry/f/attn_fp16.cubin $R/ncu_probe_run.json > $R/ncu_probe.csv 2> $R/ncu_probe.err
echo "ncu probe rc=$? $(t)"; grep -E "attn_decode_cx8" $R/ncu_probe.csv | cut -c1-220 | head -9
[ $(left) -gt 60 ] && timeout $(( $(left) - 10 )) ncu --clock-control none --cache-control none --kernel-name attn_decode_cx8 \
  --launch-skip 200 --launch-count 3 --metrics $M --csv $B bench --isolate never --model preset:tinyllama-1.1b \
  --precisions fp16 --batch-sizes 64 --input-lens 512 --output-len 128 > $R/ncu_engine.csv 2> $R/ncu_engine.err
echo "ncu engine rc=$? $(t)"; grep -E "attn_decode_cx8" $R/ncu_engine.csv | cut -c1-220 | head -9
tar czf $OUT/r.tgz -C $OUT r && rm -rf $R
t
