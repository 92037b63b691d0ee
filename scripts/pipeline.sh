#!/usr/bin/env bash
# The main job on the bundled SmolLM2: convert (fp16 and int4 AWQ) → build real TensorRT-RTX
# engines (ahead of time for sm89; no GPU needed) → bench on every backend this machine has.
# Prints where the report is. TensorRT engines need a supported GPU (sm_80/86/89/120) to *run*;
# elsewhere the report says so.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch_models.sh
python3 -m pip install --quiet --disable-pip-version-check onnxruntime==1.31.1 tensorrt-rtx-cu13-libs==1.7.1.116
cargo build --release --quiet
bin=target/release/trtforge
for c in smollm2_fp16 smollm2_int4; do
  if [ -f "engines/$c/trtforge.json" ]; then echo "engines/$c exists (trtforge convert --force to redo)" >&2
  else "$bin" convert --config "configs/$c.yaml"; fi
  "$bin" build --config "configs/$c.yaml" --quiet
done
out="reports/$(date -u +%Y-%m-%dT%H-%M-%SZ)"
"$bin" bench --engine-dirs engines/smollm2_fp16 engines/smollm2_int4 --backends auto \
  --batch-sizes 1 4 --input-lens 128 --output-len 32 --runs 3 --out "$out" >/dev/null
echo "report: $out/report.md"
echo "note: TensorRT engines were built for sm89; running them needs an sm_80/86/89/120 GPU (see the report's 'Not run here')."
