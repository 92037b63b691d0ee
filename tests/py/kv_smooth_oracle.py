#!/usr/bin/env python3
"""Independent oracle for K smoothing of a quantized KV cache (tests/fp8.rs).

    python3 tests/py/kv_smooth_oracle.py MODEL_DIR ENGINE_DIR MEANS_BIN OUT_JSON ID...

The rule (docs/formats.md, "Quantized KV cache"): a layer's new K after RoPE becomes
`k' = k - mean[layer][kv head][channel]` before it is quantized with the per-head scale, and the
cache holds the dequantized k' with nothing added back. This script computes, from the Llama
equations in numpy (not from trtforge's code):

- `expected`: layer 0's cached K for the prompt ID..., (tokens, kv_heads * head_dim) row-major:
  f16(DQ(Q((k - m) / s))) with the engine's K scales (manifest `scales_k[0]`), the means read from
  MEANS_BIN (f32, (layers, kv_heads, head_dim)), fp8 through ml_dtypes (clipped to +-448 as ONNX's
  saturate=1) or int8 round-half-even clamped to [-128, 127];
- `plain` (mean not subtracted) and `added_back` (mean added back after dequantizing): the two
  mistakes the test must be able to tell from `expected`;
- `k_abs`: |k| per element (the scale of K's own rounding error, which k - m keeps);
- `step`: per element, one quantization step at the expected value (fp8: 2^(e-3) of the code's
  binade, at least the subnormal step; int8: the scale), for the tolerance;
- `ort`: when onnxruntime is importable, ONNX Runtime's `present.0.key` for the same prompt, from
  the engine's model.onnx with the `kv_k_mean.*` constants replaced by MEANS_BIN's values (so a
  test may use means larger than calibration's, which makes a missing Sub decisive), in the same
  (tokens, kv_heads * head_dim) layout; null without onnxruntime.

MODEL_DIR is the float checkpoint the engine was converted from (config.json + model.safetensors,
f32; the fp16-weight engine's CPU reference runs these weights in f32).
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from np_llama import head_dim, inv_freq  # noqa: E402


def read_safetensors(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", (name, t["dtype"])
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(t["shape"]).astype(np.float64)
    return out


def qdq(x, s, dtype):
    """The cache's dequantized value of x (float64 array) with per-element scales s, as f32."""
    import ml_dtypes

    y = (x.astype(np.float32) / s.astype(np.float32)).astype(np.float32)
    if dtype == "fp8":
        c = np.clip(y, -448.0, 448.0).astype(ml_dtypes.float8_e4m3fn).astype(np.float32)
    else:
        c = np.clip(np.round(y), -128.0, 127.0).astype(np.float32)  # np.round: half to even
    return (c * s.astype(np.float32)).astype(np.float16).astype(np.float32)


def step(v, s, dtype):
    if dtype == "int8":
        return s.astype(np.float64)
    a = np.abs(v / s)
    e = np.floor(np.log2(np.maximum(a, 2.0**-6)))
    return (2.0 ** (e - 3)) * s


def layer0_k(cfg, w, ids):
    """Layer 0's K after RoPE for a one-sequence prefill of `ids`, (tokens, kv_heads, head_dim), from the
    Llama equations in float64, rounded to f32 (the engine computes K in f32)."""
    nkv, hd, n = cfg["num_key_value_heads"], head_dim(cfg), len(ids)
    x = w["model.embed_tokens.weight"][ids]
    g = w["model.layers.0.input_layernorm.weight"]
    h = x / np.sqrt((x * x).mean(-1, keepdims=True) + cfg["rms_norm_eps"]) * g
    k = (h @ w["model.layers.0.self_attn.k_proj.weight"].T).reshape(n, nkv, hd)
    ang = np.arange(n, dtype=np.float64)[:, None] * inv_freq(cfg)[None, :]
    cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))
    half = hd // 2
    k = k * cos[:, None, :] + np.concatenate([-k[..., half:], k[..., :half]], -1) * sin[:, None, :]
    return k.astype(np.float32).astype(np.float64)


def ort_present_key0(model, ids, nkv, hd):
    """ONNX Runtime's `present.0.key` for a one-sequence prefill of `ids` on `model` (a path or serialized
    ModelProto bytes), as (tokens, kv_heads * hd) f32 values."""
    import onnxruntime as ort

    n = len(ids)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    feeds = {
        "input_ids": np.asarray([ids], dtype=np.int64),
        "attention_mask": np.ones((1, n), dtype=np.int64),
        "position_ids": np.arange(n, dtype=np.int64)[None],
    }
    for i in sess.get_inputs():
        if i.name.startswith("past_key_values."):
            feeds[i.name] = np.zeros((1, nkv, 0, hd), dtype=np.float16)
    pk = sess.run(["present.0.key"], feeds)[0]  # (1, kv_heads, n, hd)
    return pk[0].transpose(1, 0, 2).astype(np.float32).reshape(-1).tolist()


def main():
    model_dir, engine_dir, means_bin, out_json = sys.argv[1:5]
    ids = [int(t) for t in sys.argv[5:]]
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    man = json.load(open(os.path.join(engine_dir, "trtforge.json")))
    kv = man["extra"]["quantization"]["kv_cache"]
    dtype = kv["dtype"]
    nkv, hd, layers = cfg["num_key_value_heads"], head_dim(cfg), cfg["num_hidden_layers"]
    means = np.fromfile(means_bin, dtype="<f4").astype(np.float64).reshape(layers, nkv, hd)
    k = layer0_k(cfg, w, ids)
    s = np.repeat(np.asarray(kv["scales_k"][0], dtype=np.float64), hd).reshape(nkv, hd)[None]
    m = means[0][None]
    kc = (k.astype(np.float32) - m.astype(np.float32)).astype(np.float64)
    expected = qdq(kc, s, dtype)
    plain = qdq(k, s, dtype)
    added_back = expected + m
    out = {
        "dtype": dtype,
        "expected": expected.reshape(-1).tolist(),
        "plain": plain.reshape(-1).tolist(),
        "added_back": added_back.reshape(-1).tolist(),
        "k_abs": np.abs(k).reshape(-1).tolist(),
        "step": np.broadcast_to(step(expected, s, dtype), expected.shape).reshape(-1).tolist(),
        "ort": None,
    }
    try:
        import onnx
        import onnxruntime  # noqa: F401
        from onnx import numpy_helper
    except ImportError:
        onnx = None
    if onnx is not None:
        model = onnx.load(os.path.join(engine_dir, man["onnx"]["file"]), load_external_data=False)
        replaced = 0
        for init in model.graph.initializer:
            if init.name.startswith("kv_k_mean."):
                layer = int(init.name.split(".")[1])
                new = numpy_helper.from_array(means[layer].reshape(-1).astype(np.float16), init.name)
                init.CopyFrom(new)
                replaced += 1
        assert replaced == layers, f"{replaced} kv_k_mean constants in the ONNX, want {layers}"
        out["ort"] = ort_present_key0(model.SerializeToString(), ids, nkv, hd)
    json.dump(out, open(out_json, "w"))


if __name__ == "__main__":
    main()
