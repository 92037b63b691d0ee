#!/usr/bin/env python3
"""Writes small valid seed inputs for the fuzz targets into fuzz/corpus/<target>/ (not committed).

GGUF: v3 files with every metadata value type (incl. nested arrays) and F32/F16/Q4_0/Q8_0 tensors,
written byte by byte from the GGUF spec. Safetensors: F32/F16/BF16/I64 tensors, written from the
safetensors spec. numpy-free so it runs anywhere python3 does."""
import json, os, struct, sys

HERE = os.path.dirname(os.path.abspath(__file__))


def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf(kvs, tensors, align=32):
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for k, ty, payload in kvs:
        out += gstr(k) + struct.pack("<I", ty) + payload
    off = 0
    for name, dims, ty, data in tensors:
        out += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ty, off)
        off = (off + len(data) + align - 1) // align * align
    for _, _, _, data in tensors:
        out += b"\0" * ((-len(out)) % align) + data
    return out


def kv_all_types():
    return [
        ("u8", 0, struct.pack("<B", 7)), ("i8", 1, struct.pack("<b", -7)),
        ("u16", 2, struct.pack("<H", 700)), ("i16", 3, struct.pack("<h", -700)),
        ("general.alignment", 4, struct.pack("<I", 32)), ("i32", 5, struct.pack("<i", -1)),
        ("f32", 6, struct.pack("<f", 0.5)), ("bool", 7, struct.pack("<B", 1)),
        ("general.architecture", 8, gstr("llama")),
        ("arr", 9, struct.pack("<IQ", 8, 2) + gstr("a") + gstr("b")),
        ("nested", 9, struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 4, 2) + struct.pack("<II", 1, 2)),
        ("u64", 10, struct.pack("<Q", 1 << 40)), ("i64", 11, struct.pack("<q", -(1 << 40))),
        ("f64", 12, struct.pack("<d", 1e-5)),
    ]


def main():
    g = os.path.join(HERE, "corpus", "gguf_header")
    s = os.path.join(HERE, "corpus", "safetensors_header")
    os.makedirs(g, exist_ok=True)
    os.makedirs(s, exist_ok=True)
    f32 = struct.pack("<8f", *range(8))
    f16 = b"\x00\x3c" * 8
    q4_0 = (b"\x00\x3c" + bytes(range(16))) * 2  # 2 blocks of 32
    q8_0 = (b"\x00\x3c" + bytes(range(32))) * 1
    files = {
        "empty_v3.gguf": gguf([], []),
        "types.gguf": gguf(kv_all_types(), [("a", [8], 0, f32), ("b", [4, 2], 1, f16)]),
        "quant.gguf": gguf([("general.alignment", 4, struct.pack("<I", 64))], [("q4", [64], 2, q4_0), ("q8", [32], 8, q8_0)], 64),
    }
    for n, b in files.items():
        open(os.path.join(g, n), "wb").write(b)

    def st(tensors, meta=None):
        header, data = {}, b""
        for name, dtype, shape, raw in tensors:
            header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
            data += raw
        if meta:
            header["__metadata__"] = meta
        h = json.dumps(header).encode()
        h += b" " * ((-len(h)) % 8)
        return struct.pack("<Q", len(h)) + h + data

    sts = {
        "empty.safetensors": st([]),
        "mixed.safetensors": st(
            [("w", "F32", [2, 4], f32), ("h", "F16", [8], f16), ("b", "BF16", [2, 2], b"\x80\x3f" * 4), ("i", "I64", [1], struct.pack("<q", 5))],
            {"format": "pt"},
        ),
        "scalar.safetensors": st([("s", "F32", [], struct.pack("<f", 1.0))]),
    }
    for n, b in sts.items():
        open(os.path.join(s, n), "wb").write(b)
    print(f"seeds in {g} and {s}", file=sys.stderr)


if __name__ == "__main__":
    main()
