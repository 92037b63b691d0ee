#!/usr/bin/env bash
# Session 28 call 4: why the W8A8 fp8 path (call 3: f8g at 9..=64 rows) is slower in the replayed decode graph than
# its eager step suggests. (1) per-kernel prefill profiles of 64 rows (fp16; fp8 W8A8 with f8g; with cuBLASLt);
# (2) bs64 decode (512 + 128), one engine a process: fp16, fp8 W8A16 (FP8_GEMM=0), W8A8 f8g, W8A8 cuBLASLt
# (F8G=0), f8g without PDL; then bs16 / 32; (3) the f8g1 check (prefill passes of 64 / 33 / 20 / 9 rows vs the CPU).
# The glue kernels rmsnorm_q8 / swiglu_q8 / quant_e4m3_rows (o input) now keep the row in registers (one L2 round trip).
set -uo pipefail
C=.carry/s28b; B=$C/trtforge; O=/tmp/s28b; mkdir -p $O
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 TRTFORGE_CACHE_DIR=/tmp/kc; mkdir -p /tmp/kc; cp $C/K/* /tmp/kc/ 2>/dev/null
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))"; }; left() { echo $(( 570 - $(date +%s) + T0 )); }
fin() { cp $C/commit.txt $O/ 2>/dev/null; tar czf ${OUT:-/tmp}/s28b.tgz -C /tmp s28b; }
trap fin EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader; date -u; cat $C/commit.txt; } > $O/env.txt 2>&1; cat $O/env.txt
R() { local tag=$1 lim=$2; shift 2; timeout $lim "$@" > $O/$tag.log 2>&1; echo "$tag rc=$?"; grep -E "^\| (fp|int)|rror|prefill 64 kernels|bs64 eager|warning" $O/$tag.log | cut -c1-600; t; }
TB="$B bench --model preset:tinyllama-1.1b --isolate never --precisions"  # then: precision batch-sizes input-len output-len
TRTFORGE_FP8_GEMM=1 R d_f8g 60 $TB fp8 --batch-sizes 64 --input-lens 512 --output-len 128
TRTFORGE_FP8_GEMM=0 R d_w8a16 60 $TB fp8 --batch-sizes 64 --input-lens 512 --output-len 128
R d_fp16 60 $TB fp16 --batch-sizes 64 --input-lens 512 --output-len 128
TRTFORGE_FP8_GEMM=1 R p_f8g 60 $TB fp8 --batch-sizes 1 --input-lens 64 --output-len 8
TRTFORGE_FP8_GEMM=1 TRTFORGE_F8G=0 R d_lt 60 $TB fp8 --batch-sizes 64 --input-lens 512 --output-len 128
TRTFORGE_FP8_GEMM=1 TRTFORGE_F8G=0 R p_lt 60 $TB fp8 --batch-sizes 1 --input-lens 64 --output-len 8
R p_fp16 60 $TB fp16 --batch-sizes 1 --input-lens 64 --output-len 8
TRTFORGE_FP8_GEMM=1 TRTFORGE_PDL=0 R d_f8g_nopdl 60 $TB fp8 --batch-sizes 64 --input-lens 512 --output-len 128
TRTFORGE_FP8_GEMM=1 R d_f8g_16_32 60 $TB fp8 --batch-sizes 16,32 --input-lens 512 --output-len 128
TRTFORGE_FP8_GEMM=0 R d_w8a16_16_32 60 $TB fp8 --batch-sizes 16,32 --input-lens 512 --output-len 128
TRTFORGE_FP8_GEMM=1 TRTFORGE_CHECKS=f8g1 R chk 150 $B cuda-check --tiny tests/fixtures/tiny_llama; grep -E "PASS|FAIL|passed|failed" $O/chk.log | cut -c1-300
true
