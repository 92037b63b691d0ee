#!/usr/bin/env bash
# Session 16 call 1: session 15's prepared next_call.sh (engine tcg4 body in the prototype harness; engine bs64 with
# forced K slices beside the default), then ncu durations + launch stats of the engine's tcg4 kernels at S=4.
set -uo pipefail
export C=.carry/next; O=${OUT:-/tmp}/next; mkdir -p $O
bash docs/benchmarks/2026-12-01-h200-session15/next_call.sh 2>&1 | tee $O/next_call.log
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 PATH=/usr/local/cuda/bin:$PATH TRTFORGE_CACHE_DIR=/tmp/kc
timeout 80 env TRTFORGE_TCG=4 TRTFORGE_TCG4_S=4 ncu --clock-control none -k regex:"tcg4_(qkv|o|gateup|down)_64" -c 4 --section SpeedOfLight --section LaunchStats $C/trtforge bench --model preset:tinyllama-1.1b --input-lens 512 --output-len 128 --precisions fp16 --batch-sizes 64 > $O/ncu_s4.log 2>&1; echo "ncu rc=$?"
grep -E "^  tcg4_|Duration|Grid Size|DRAM Throughput" $O/ncu_s4.log | head -20
cp -r /tmp/gemm_ws4 $O/ 2>/dev/null; true
