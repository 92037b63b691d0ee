#!/usr/bin/env python3
"""Writes a GGUF of random quantized blocks, one tensor per ggml type, and what the `gguf`
package's own dequantizer (`gguf.quants.dequantize`) makes of them: the oracle for trtforge's
dequantization (tests/gguf_quants.rs).

    python3 tests/py/gguf_quant_blocks.py OUT_DIR [SEED]

Writes OUT_DIR/blocks.gguf (tensors named `q.<TYPE>`, shape rows × cols) and, per tensor,
OUT_DIR/<TYPE>.f32 (the expected values, little-endian f32, row-major) plus OUT_DIR/manifest.json
({type: [rows, cols]}). Blocks are random bytes with their scale fields overwritten by random
finite values, so every quant and every packing bit is exercised.

Q8_K has no dequantizer in the `gguf` package (ggml uses it only for activations); its
expected values come from its definition, float32(d) * int8(q), computed here with numpy.
"""
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES

# (type, byte offsets of its f16 scale fields within a block).
F16_SCALES = {
    T.Q4_0: [0],
    T.Q4_1: [0, 2],
    T.Q5_0: [0],
    T.Q5_1: [0, 2],
    T.Q8_0: [0],
    T.IQ4_NL: [0],
    T.IQ4_XS: [0],
    T.IQ2_XXS: [0],
    T.IQ2_XS: [0],
    T.IQ2_S: [0],
    T.IQ3_XXS: [0],
    T.IQ3_S: [0],
    T.IQ1_S: [0],
    T.IQ1_M: [],  # its f16 d is spread over the top nibbles of the four scale words: set below
    T.Q2_K: [80, 82],
    T.Q3_K: [108],
    T.Q4_K: [0, 2],
    T.Q5_K: [0, 2],
    T.Q6_K: [208],
}
ROWS = 3


def main() -> None:
    out = sys.argv[1]
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    w = gguf.GGUFWriter(os.path.join(out, "blocks.gguf"), arch="llama")
    manifest = {}
    expected = {}
    for qt, offsets in F16_SCALES.items():
        block, size = GGML_QUANT_SIZES[qt]
        nb = 2 if block == 256 else 8  # blocks per row
        raw = rng.integers(0, 256, size=(ROWS, nb, size), dtype=np.uint8)
        for off in offsets:
            scale = rng.normal(0, 0.05, size=(ROWS, nb)).astype(np.float16)
            raw[:, :, off : off + 2] = scale.view(np.uint8).reshape(ROWS, nb, 2)
        if qt == T.IQ1_M:
            bits = rng.normal(0, 0.05, size=(ROWS, nb)).astype(np.float16).view(np.uint16).astype(np.uint32)
            words = raw[:, :, 48:56].copy().view(np.uint16).astype(np.uint32)  # (ROWS, nb, 4)
            for i in range(4):  # word i's top nibble holds bits 4i .. 4i + 3 of d
                words[:, :, i] = (words[:, :, i] & 0x0FFF) | (((bits >> (4 * i)) & 0xF) << 12)
            raw[:, :, 48:56] = words.astype(np.uint16).view(np.uint8).reshape(ROWS, nb, 8)
        raw = raw.reshape(ROWS, nb * size)
        expected[qt.name] = gguf.quants.dequantize(raw, qt)
        w.add_tensor(f"q.{qt.name}", raw, raw_dtype=qt)
    # Q8_K: f32 d, 256 × i8, 16 × i16 sums (ignored by dequantization).
    nb = 2
    raw = rng.integers(0, 256, size=(ROWS, nb, GGML_QUANT_SIZES[T.Q8_K][1]), dtype=np.uint8)
    d = rng.normal(0, 0.01, size=(ROWS, nb)).astype(np.float32)
    raw[:, :, 0:4] = d.view(np.uint8).reshape(ROWS, nb, 4)
    q = raw[:, :, 4 : 4 + 256].view(np.int8).astype(np.float32)
    expected["Q8_K"] = (d[:, :, None] * q).reshape(ROWS, nb * 256)
    w.add_tensor("q.Q8_K", raw.reshape(ROWS, -1), raw_dtype=T.Q8_K)
    # Plain float types, from random finite values.
    vals = rng.normal(0, 1, size=(ROWS, 64)).astype(np.float32)
    for qt in (T.F32, T.F16, T.BF16):
        if qt == T.F32:
            raw = vals
        elif qt == T.F16:
            raw = vals.astype(np.float16)
        else:
            raw = gguf.quants.quantize(vals, T.BF16)
        expected[qt.name] = gguf.quants.dequantize(raw, qt) if qt != T.F32 else vals
        w.add_tensor(f"q.{qt.name}", raw, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    for name, arr in expected.items():
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        assert np.isfinite(arr).all(), name
        arr.astype("<f4").tofile(os.path.join(out, f"{name}.f32"))
        manifest[name] = list(arr.shape)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f)


if __name__ == "__main__":
    main()
