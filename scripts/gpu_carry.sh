#!/usr/bin/env bash
# Builds what a device call carries (the GPU machine has no cargo and no network): the stripped, gzipped release
# binary and its NVRTC kernel cache compiled here for sm_90, as one tarball `.carry/z/NAME.tgz` (git-ignored; a
# fresh checkout has none, so every session that needs the GPU runs this first).
#
#   bash scripts/gpu_carry.sh NAME            # e.g. s45; NAME is also the folder inside the tarball
#   LINEINFO=1 bash scripts/gpu_carry.sh NAME # and the int4 module with -lineinfo (TRTFORGE_NVRTC_LINEINFO=1)
#   VARIANT=TRTFORGE_TIMELINE=1 bash scripts/gpu_carry.sh NAME  # and the fp16 / int4 modules of that build switch
#                                                              # (several builds: separated by ';')
#   KV="int8 fp8" bash scripts/gpu_carry.sh NAME   # and the bench modules with those KV caches (`--kv-cache`), at the
#                                                  # precisions KVP (default "fp16 fp8 int4")
#
# On the device machine:   tar xzf .carry/z/NAME.tgz -C /tmp/cz && gunzip /tmp/cz/NAME/trtforge.gz
#   TRTFORGE_CACHE_DIR=/tmp/cz/NAME/K LD_LIBRARY_PATH=/usr/local/cuda/lib64 /tmp/cz/NAME/trtforge bench ...
# and call `run` with carry [".carry/z"] (64 MiB at most travels; a tarball is ≈ 12 MiB).
#
# The cache covers the TinyLlama-shape preset at fp16 / int4 / int8 / fp8 (bs64 kernels include the bs1 / bs8
# ones: the kernel set does not depend on the batch), the SmolLM2-shape preset at fp16, both presets' megakernel
# modules (`TRTFORGE_MK=1`), the tiny fixture's `cuda-check --paged` kernels and the wq self-test's
# (`TRTFORGE_CHECKS=wqk`). NVRTC for
# CUDA 13.0 comes from PyPI (nvidia-cuda-nvrtc); it is downloaded once into NVRTC_DIR (default /tmp/nvrtc).
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: bash scripts/gpu_carry.sh NAME}
case $name in *[!A-Za-z0-9_-]*) echo "NAME may hold letters, digits, - and _ only" >&2; exit 2 ;; esac
grep -qx '.carry/' .git/info/exclude 2>/dev/null || echo '.carry/' >> .git/info/exclude

nvrtc=${NVRTC_DIR:-/tmp/nvrtc}
lib=$nvrtc/x/nvidia/cu13/lib
if ! ls "$lib"/libnvrtc.so* >/dev/null 2>&1; then
  mkdir -p "$nvrtc"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$nvrtc" 'nvidia-cuda-nvrtc==13.0.*'
  (cd "$nvrtc" && python3 -m zipfile -e nvidia_cuda_nvrtc*.whl x)
fi
ls "$lib"/libnvrtc.so* >/dev/null || { echo "no libnvrtc.so under $lib" >&2; exit 1; }

cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/$name/K"
strip -o "$work/$name/trtforge" target/release/trtforge
bin="$work/$name/trtforge"
pre() {
  # The precompile run stops with an error that says the kernels were cached: that message is the success.
  local log
  log=$(LD_LIBRARY_PATH=$lib TRTFORGE_CACHE_DIR="$work/$name/K" TRTFORGE_CUDA_PRECOMPILE=sm_90 "$bin" "$@" 2>&1 || true)
  if ! grep -q "cached" <<<"$log"; then
    echo "precompiling failed for: $*" >&2
    echo "$log" | tail -20 >&2
    exit 1
  fi
}
tl_bench() {  # the TinyLlama-shape preset's bs64 bench at precision $1 (its kernels cover bs1 / bs8 too), [$2: KV cache]
  pre bench --isolate never --model preset:tinyllama-1.1b --precisions "$1" --batch-sizes 64 --input-lens 512 --output-len 128 \
    ${2:+--kv-cache "$2"}
}
for p in fp16 int4 int8 fp8; do
  tl_bench $p
done
pre cuda-check --tiny tests/fixtures/tiny_llama --paged
# the SmolLM2-shape preset's bs1 row (the table's `smol_1`), and both shapes' one-row decode megakernel modules
# (`TRTFORGE_MK=1`, fp16 bs1: `bn ... TRTFORGE_MK=1`)
smol_bench() {
  pre bench --isolate never --model preset:smollm2-135m --precisions fp16 --batch-sizes 1 --input-lens 512 --output-len 128
}
smol_bench
(export TRTFORGE_MK=1; smol_bench; tl_bench fp16)
# the quantized decode GEMM's self-test (`TRTFORGE_CHECKS=wqk`: its tiny32 int8 engine's module)
TRTFORGE_CHECKS=wqk pre cuda-check --tiny tests/fixtures/tiny_llama
# VARIANT="NAME=VALUE ...": also the fp16 and int4 bench modules built under those variables (an opt-in switch that
# changes the kernels' source, e.g. VARIANT=TRTFORGE_TIMELINE=1), so that the GPU machine does not compile them
# Several builds: separate them with ';' (VARIANT="TRTFORGE_TIMELINE=1; TRTFORGE_I4_LOP3=0").
if [ -n "${VARIANT:-}" ]; then
  IFS=';' read -ra variants <<<"$VARIANT"
  for v in "${variants[@]}"; do
    for p in fp16 int4; do
      (export $v; tl_bench $p)
    done
  done
fi
for kv in ${KV:-}; do
  for p in ${KVP:-fp16 fp8 int4}; do
    tl_bench $p $kv
  done
done
# LINEINFO=1: also the int4 module with source lines (TRTFORGE_NVRTC_LINEINFO=1 on the GPU machine, for ncu's source view)
if [ "${LINEINFO:-0}" = 1 ]; then
  TRTFORGE_NVRTC_LINEINFO=1 tl_bench int4
fi
gzip "$bin"
mkdir -p .carry/z
tar czf ".carry/z/$name.tgz.part" -C "$work" "$name"
mv ".carry/z/$name.tgz.part" ".carry/z/$name.tgz"
echo "wrote .carry/z/$name.tgz ($(du -h ".carry/z/$name.tgz" | cut -f1); commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ', src modified'))"
