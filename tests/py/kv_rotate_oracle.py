#!/usr/bin/env python3
"""Independent oracle for the K rotation of a quantized KV cache (tests/fp8.rs, `kv_rotate`).

    python3 tests/py/kv_rotate_oracle.py MODEL_DIR ENGINE_DIR OUT_JSON ID...

The rule (docs/formats.md, "Quantized KV cache"; the manifest's kv_cache.rotate): each layer's new K
after RoPE is rotated per kv head by R = diag(s) H / sqrt(hd) (H the Sylvester Hadamard matrix,
H[i][j] = (-1)^popcount(i & j); s the layer's hd signs: SplitMix64(seed) draws in (layer, channel)
order, -1 where a draw's top bit is set), quantized with the per-head K scale, and the reference
backends store the result rotated back (Q(kR) R^T). This script computes from the Llama equations in
numpy, with its own SplitMix64 and its own Hadamard matrix (not trtforge's code):

- `r`: layer 0's R, (hd, hd) row-major;
With K smoothing too (the manifest's smooth_k; kv_k_mean.bin in ENGINE_DIR, f32 (layers, kv_heads, hd)),
the layer's mean is subtracted before the rotation: k' = (k - mean) R.

- `expected_rot`: layer 0's cached K in the rotated basis, (tokens, kv_heads * hd): f16(DQ(Q(k R / s)))
  (kv_smooth_oracle's qdq: fp8 through ml_dtypes, clipped to +-448; int8 round-half-even clamped to
  [-128, 127]; the dequantized value in the model's f16);
- `plain_rot`: the mistake the test must tell apart: K quantized unrotated (DQ(Q(k / s)) * s), seen
  in the rotated basis;
- `step`: per element, one quantization step at the expected value;
- `ort`: when onnxruntime is importable, ONNX Runtime's `present.0.key` for the same prompt as
  (tokens, kv_heads * hd); null without onnxruntime.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kv_smooth_oracle import layer0_k, ort_present_key0, qdq, read_safetensors, step  # noqa: E402
from np_llama import head_dim  # noqa: E402

MASK = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def signs(seed, layers, hd):
    st, out = seed, []
    for _ in range(layers * hd):
        st, z = splitmix64(st)
        out.append(-1.0 if z >> 63 else 1.0)
    return np.asarray(out).reshape(layers, hd)


def hadamard(n):
    h = np.ones((1, 1))
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def main():
    model_dir, engine_dir, out_json = sys.argv[1:4]
    ids = [int(t) for t in sys.argv[4:]]
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    man = json.load(open(os.path.join(engine_dir, "trtforge.json")))
    kv = man["extra"]["quantization"]["kv_cache"]
    dtype = kv["dtype"]
    nkv, hd, layers = cfg["num_key_value_heads"], head_dim(cfg), cfg["num_hidden_layers"]
    sg = signs(int(kv["rotate"]["seed"]), layers, hd)
    r = sg[0][:, None] * hadamard(hd) / np.sqrt(hd)
    k = layer0_k(cfg, w, ids)
    s = np.repeat(np.asarray(kv["scales_k"][0], dtype=np.float64), hd).reshape(nkv, hd)[None]
    if kv.get("smooth_k"):
        mean = np.fromfile(os.path.join(engine_dir, "kv_k_mean.bin"), dtype="<f4").astype(np.float64)
        k = (k.astype(np.float32) - mean.reshape(layers, nkv, hd)[0][None].astype(np.float32)).astype(np.float64)
    expected = qdq(k @ r, s, dtype).astype(np.float64)
    plain = qdq(k, s, dtype).astype(np.float64) @ r
    out = {
        "r": r.reshape(-1).tolist(),
        "expected_rot": expected.reshape(-1).tolist(),
        "plain_rot": plain.reshape(-1).tolist(),
        "step": np.broadcast_to(step(expected, s, dtype), expected.shape).reshape(-1).tolist(),
        "ort": None,
    }
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        onnxruntime = None
    if onnxruntime is not None:
        out["ort"] = ort_present_key0(os.path.join(engine_dir, man["onnx"]["file"]), ids, nkv, hd)
    json.dump(out, open(out_json, "w"))


if __name__ == "__main__":
    main()
