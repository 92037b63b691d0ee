#!/usr/bin/env python3
"""A gpt-fast-style PyTorch peer for `trtforge bench --baseline FILE`.

What a strong PyTorch user would write for fast Llama decoding (pytorch-labs/gpt-fast's recipe):
a plain Llama module with a static KV cache allocated once, the decode step compiled with
`torch.compile(mode="reduce-overhead", fullgraph=True)` (Inductor kernels replayed as CUDA graphs),
the prefill compiled separately, greedy argmax on the device, and weight-only quantization:

- fp16:  nn.Linear in fp16.
- int8:  per-output-channel int8 weights; `F.linear(x, w.to(x.dtype)) * scales`, which Inductor
         fuses into one dequantizing matmul kernel (gpt-fast's WeightOnlyInt8Linear).
- int4:  group-wise 4-bit weights in tinygemm's packed layout through
         `torch.ops.aten._weight_int4pack_mm` (bf16 activations, as gpt-fast's int4 path).

Weights are seeded random (speed does not depend on their values). The model shape comes from a
trtforge engine dir's manifest (`--engine-dirs`) or a preset (`--preset tinyllama-1.1b`). Output is
the results.json schema of docs/bench-schema.md, one backend `torch-compile` per precision, so
`trtforge bench --baseline` can put it beside its own rows:

    python3 scripts/torch_baseline.py --preset tinyllama-1.1b --precisions fp16 int8 int4 \
        --batch-sizes 1 8 64 --input-lens 512 --output-len 128 --runs 3 --out torch.json

Timing as gpt-fast does it: warm-up runs first (compilation and graph capture stay out), device
synchronized before the clock is read. TTFT = prefill of the prompt + the first greedy token;
decode tok/s = batch × (output_len − 1) / (time of the remaining steps).
"""
import argparse
import datetime
import json
import math
import os
import platform
import socket
import sys
import time

PRESETS = {
    # name: (vocab, hidden, intermediate, layers, heads, kv_heads, head_dim, rope_theta, eps, tied, max_pos)
    "tinyllama-1.1b": dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                           num_attention_heads=32, num_key_value_heads=4, head_dim=64, rope_theta=10000.0,
                           rms_norm_eps=1e-5, tie_word_embeddings=False, max_position_embeddings=2048),
    "smollm2-135m": dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, head_dim=64, rope_theta=100000.0,
                         rms_norm_eps=1e-5, tie_word_embeddings=True, max_position_embeddings=8192),
}


# The results.json row helpers are hf_baseline.py's (same schema, one definition).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_baseline import latency, row, summary  # noqa: E402


def define_model():
    """The Llama modules (imported lazily so --help works without torch)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Int8Linear(nn.Module):
        def __init__(self, w):  # w: (out, in) float
            super().__init__()
            scales = w.abs().amax(dim=1).clamp(min=1e-8) / 127.0
            self.register_buffer("weight", torch.round(w / scales[:, None]).clamp(-127, 127).to(torch.int8))
            self.register_buffer("scales", scales.to(w.dtype))

        def forward(self, x):
            return F.linear(x, self.weight.to(dtype=x.dtype)) * self.scales

    class Int4Linear(nn.Module):
        """tinygemm: w = (q - 8) * scale + zero per group of `group` input columns; bf16 only."""

        def __init__(self, w, group, inner_k_tiles):
            super().__init__()
            out_f, in_f = w.shape
            wg = w.float().reshape(out_f, in_f // group, group)
            lo, hi = wg.amin(dim=2), wg.amax(dim=2)
            scales = ((hi - lo).clamp(min=1e-6) / 15.0)
            zeros = lo + scales * 8.0
            q = torch.round((wg - lo[..., None]) / scales[..., None]).clamp(0, 15).to(torch.int32).reshape(out_f, in_f)
            # torch >= 2.5 takes (out, in/2) uint8 with two nibbles per byte; older took int32 codes.
            try:
                packed = torch.ops.aten._convert_weight_to_int4pack((q[:, ::2] << 4 | q[:, 1::2]).to(torch.uint8),
                                                                    inner_k_tiles)
            except RuntimeError:
                packed = torch.ops.aten._convert_weight_to_int4pack(q, inner_k_tiles)
            self.register_buffer("weight", packed)
            sz = torch.stack([scales, zeros], dim=2).transpose(0, 1).contiguous()  # (in/group, out, 2)
            self.register_buffer("scales_and_zeros", sz.to(torch.bfloat16))
            self.group, self.out_features = group, out_f

        def forward(self, x):
            shape = x.shape[:-1]
            y = torch.ops.aten._weight_int4pack_mm(x.reshape(-1, x.shape[-1]).to(torch.bfloat16), self.weight,
                                                  self.group, self.scales_and_zeros)
            return y.reshape(*shape, self.out_features).to(x.dtype)

    class KVCache(nn.Module):
        def __init__(self, b, n_kv, max_seq, hd, dtype):
            super().__init__()
            self.register_buffer("k", torch.zeros(b, n_kv, max_seq, hd, dtype=dtype))
            self.register_buffer("v", torch.zeros(b, n_kv, max_seq, hd, dtype=dtype))

        def update(self, pos, k, v):  # pos: (S,), k/v: (B, n_kv, S, hd)
            self.k.index_copy_(2, pos, k)
            self.v.index_copy_(2, pos, v)
            return self.k, self.v

    class RMSNorm(nn.Module):
        def __init__(self, dim, eps):
            super().__init__()
            self.eps = eps
            self.weight = nn.Parameter(torch.ones(dim))

        def forward(self, x):
            xf = x.float()
            return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight

    def rope(x, cos, sin):  # x: (B, H, S, hd), rotate-half (HF layout)
        h = x.shape[-1] // 2
        x1, x2 = x[..., :h], x[..., h:]
        return (x * cos + torch.cat([-x2, x1], dim=-1) * sin).to(x.dtype)

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            d, hd = c["hidden_size"], c["head_dim"]
            self.nh, self.nkv, self.hd = c["num_attention_heads"], c["num_key_value_heads"], hd
            self.wqkv = nn.Linear(d, (self.nh + 2 * self.nkv) * hd, bias=False)  # fused, as gpt-fast
            self.wo = nn.Linear(self.nh * hd, d, bias=False)
            self.w13 = nn.Linear(d, 2 * c["intermediate_size"], bias=False)  # gate and up, fused
            self.w2 = nn.Linear(c["intermediate_size"], d, bias=False)
            self.n1 = RMSNorm(d, c["rms_norm_eps"])
            self.n2 = RMSNorm(d, c["rms_norm_eps"])
            self.cache = None

        def forward(self, x, pos, cos, sin, mask):
            b, s, _ = x.shape
            qkv = self.wqkv(self.n1(x))
            q, k, v = qkv.split([self.nh * self.hd, self.nkv * self.hd, self.nkv * self.hd], dim=-1)
            q = q.view(b, s, self.nh, self.hd).transpose(1, 2)
            k = k.view(b, s, self.nkv, self.hd).transpose(1, 2)
            v = v.view(b, s, self.nkv, self.hd).transpose(1, 2)
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            k, v = self.cache.update(pos, k, v)
            # GQA without materializing repeated K/V (a peer must not be weakened on purpose).
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
            x = x + self.wo(a.transpose(1, 2).reshape(b, s, self.nh * self.hd))
            g, u = self.w13(self.n2(x)).chunk(2, dim=-1)
            return x + self.w2(F.silu(g) * u)

    class Llama(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c = c
            self.embed = nn.Embedding(c["vocab_size"], c["hidden_size"])
            self.layers = nn.ModuleList(Block(c) for _ in range(c["num_hidden_layers"]))
            self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
            self.head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
            self.max_seq = 0

        def setup_cache(self, b, max_seq, dtype, device):
            hd = self.c["head_dim"]
            for l in self.layers:
                l.cache = KVCache(b, self.c["num_key_value_heads"], max_seq, hd, dtype).to(device)
            inv = 1.0 / (self.c["rope_theta"] ** (torch.arange(0, hd, 2, device=device).float() / hd))
            f = torch.outer(torch.arange(max_seq, device=device).float(), inv)
            emb = torch.cat([f, f], dim=-1)
            self.cos, self.sin = emb.cos().to(dtype), emb.sin().to(dtype)
            self.causal = torch.tril(torch.ones(max_seq, max_seq, dtype=torch.bool, device=device))
            self.max_seq = max_seq

        def forward(self, ids, pos):  # ids: (B, S), pos: (S,)
            x = self.embed(ids)
            cos, sin = self.cos[pos][None, None], self.sin[pos][None, None]
            mask = self.causal[pos][None, None]
            for l in self.layers:
                x = l(x, pos, cos, sin, mask)
            return self.head(self.norm(x[:, -1:]))[:, -1]  # (B, vocab): last position only

    return Llama, Int8Linear, Int4Linear


def build(c, precision, device, seed, group):
    import torch
    import torch.nn as nn

    Llama, Int8Linear, Int4Linear = define_model()
    torch.manual_seed(seed)
    dtype = torch.bfloat16 if precision == "int4" else torch.float16
    with torch.device(device):
        m = Llama(c)
    # Random weights with a realistic scale (std 0.02), made on the device (fast).
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.02)
    m = m.to(dtype)
    if c["tie_word_embeddings"]:
        m.head.weight = m.embed.weight
    if precision in ("int8", "int4"):
        def replace(mod):
            for name, ch in mod.named_children():
                if isinstance(ch, nn.Linear) and not (ch is m.head and c["tie_word_embeddings"]):
                    w = ch.weight.data
                    if precision == "int8":
                        setattr(mod, name, Int8Linear(w))
                    else:
                        k = w.shape[1]
                        g = group if k % group == 0 else next(x for x in (64, 32) if k % x == 0)
                        tiles = next(t for t in (8, 4, 2) if k % (t * 16) == 0)
                        setattr(mod, name, Int4Linear(w, g, tiles))
                else:
                    replace(ch)
        with torch.no_grad():
            replace(m)
    return m.eval(), dtype


def measure(model, dtype, b, l, n, runs, warmup, seed, device, compile_, compile_prefill):
    import torch

    model.setup_cache(b, l + n, dtype, device)
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(16, model.c["vocab_size"], (b, l), generator=g).to(device)
    prefill_pos = torch.arange(l, device=device)

    def prefill(x, pos):
        return model(x, pos).argmax(dim=-1, keepdim=True).to(torch.long)

    def decode(x, pos):
        return model(x, pos).argmax(dim=-1, keepdim=True).to(torch.long)

    if compile_:
        torch._dynamo.reset()
        decode = torch.compile(decode, mode="reduce-overhead", fullgraph=True, dynamic=False)
        if compile_prefill:
            prefill = torch.compile(prefill, fullgraph=True, dynamic=True)

    def run_once():
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        tok = prefill(ids, prefill_pos)
        torch.cuda.synchronize()
        t1 = time.perf_counter()
        pos = torch.tensor([l], device=device)
        for _ in range(n - 1):
            tok = decode(tok, pos).clone()
            pos += 1
        torch.cuda.synchronize()
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1

    ttft, dec, pre, e2e, itl = [], [], [], [], []
    torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        for i in range(warmup + runs):
            tp, td = run_once()
            if i < warmup:
                continue
            ttft.append(tp * 1e3)
            pre.append(b * l / tp)
            dec.append(b * (n - 1) / max(td, 1e-9))
            e2e.append(b * n / (tp + td))
            itl.append(td / max(n - 1, 1) * 1e3)
    kv = sum(x.numel() * x.element_size() for lay in model.layers for x in (lay.cache.k, lay.cache.v))
    wb = sum(x.numel() * x.element_size() for x in list(model.parameters()) + list(model.buffers())) - kv
    mem = {"weights_bytes": wb, "kv_cache_bytes": kv, "device_peak_bytes": torch.cuda.max_memory_allocated(),
           "device_used_delta_bytes": None}
    return dict(ttft_ms=summary(ttft), itl_ms=latency(itl), decode_tok_s=summary(dec), prefill_tok_s=summary(pre),
                e2e_tok_s=summary(e2e), memory=mem)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--engine-dirs", nargs="+", help="trtforge engine dirs: the model shape from trtforge.json")
    src.add_argument("--preset", choices=sorted(PRESETS), help="a model shape by name")
    ap.add_argument("--precisions", nargs="+", default=["fp16"], choices=["fp16", "int8", "int4"])
    ap.add_argument("--group-size", type=int, default=128, help="int4 group (falls back to 64/32 if it does not divide)")
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[1])
    ap.add_argument("--input-lens", nargs="+", type=int, default=[512])
    ap.add_argument("--output-len", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2, help="warm-up runs (the first compiles and captures graphs)")
    ap.add_argument("--eager", action="store_true", help="no torch.compile (for checking the script)")
    ap.add_argument("--eager-prefill", action="store_true",
                    help="compile only the decode step (saves compile time; TTFT then runs eager)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    for name, v in (("--batch-sizes", a.batch_sizes), ("--input-lens", a.input_lens), ("--output-len", [a.output_len]),
                    ("--runs", [a.runs])):
        if any(x < 1 for x in v):
            sys.exit(f"torch_baseline.py: {name} must be at least 1")
    if a.warmup < 1 and not a.eager:
        sys.exit("torch_baseline.py: --warmup must be at least 1 with torch.compile (the first run compiles)")

    import torch

    if not torch.cuda.is_available():
        sys.exit("torch_baseline.py: no CUDA device; the peer is measured on the GPU")
    models = []
    if a.preset:
        models.append((a.preset, dict(PRESETS[a.preset])))
    else:
        for d in a.engine_dirs:
            man = json.load(open(os.path.join(d, "trtforge.json")))
            c = man["model_config"]
            if c.get("rope_scaling"):
                print(f"note: {d}: RoPE scaling is not modelled (speed only)", file=sys.stderr)
            models.append((man["name"], c))
    backend = "torch-eager" if a.eager else "torch-compile"
    dev = "cuda"
    engines, speed = [], []
    def save():
        """Writes what was measured so far (atomically), so a run stopped by a time limit keeps its rows."""
        props = torch.cuda.get_device_properties(0)
        res = {
            "schema_version": 1, "trtforge_version": "torch_baseline.py", "git_commit": "unknown",
            "command": " ".join(sys.argv),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": {"hostname": socket.gethostname(), "os": platform.platform(), "cpu": platform.processor(),
                        "cores": os.cpu_count(), "memory_bytes": 0,
                        "gpu": f"{props.name} (sm_{props.major}{props.minor})",
                        "driver": None, "cuda": torch.version.cuda, "tensorrt": None, "onnxruntime": None},
            "settings": {"engine_dirs": a.engine_dirs or [], "backends": [], "batch_sizes": a.batch_sizes,
                         "input_lens": a.input_lens, "output_len": a.output_len, "runs": a.runs,
                         "warmup": a.warmup, "eval_text": None, "eval_ctx": 0, "eval_windows": 0,
                         "quality_tokens": 0, "memory_sweep": False, "sweep_batch_sizes": [], "sweep_seq_lens": [],
                         "seed": a.seed,
                         "peer": {"torch": torch.__version__, "precisions": a.precisions, "group_size": a.group_size,
                                  "compile": not a.eager, "compile_prefill": not a.eager_prefill,
                                  "preset": a.preset}},
            "engines": engines, "speed": speed, "quality": [], "memory_sweep": [], "interrupted": False,
        }
        tmp = a.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(res, f, indent=1)
        os.replace(tmp, a.out)

    for base, c in models:
        for prec in a.precisions:
            name = f"{base}-{prec}-torch"
            engines.append({"dir": "", "name": name, "precision": prec, "parameters": 0, "size_bytes": 0})
            try:
                model, dtype = build(c, prec, dev, a.seed, a.group_size)
                engines[-1]["parameters"] = sum(
                    p.numel() for p in model.parameters()) + sum(x.numel() * (2 if x.dtype == torch.uint8 else 1)
                                                                 for x in model.buffers() if x.dtype in (torch.int8, torch.uint8, torch.int32))
            except Exception as e:  # noqa: BLE001 - recorded in the report
                for b in a.batch_sizes:
                    for l in a.input_lens:
                        speed.append(row(name, backend, b, l, a.output_len, "error", f"{type(e).__name__}: {e}"))
                continue
            for b in a.batch_sizes:
                for l in a.input_lens:
                    t = time.perf_counter()
                    try:
                        speed.append(row(name, backend, b, l, a.output_len,
                                         **measure(model, dtype, b, l, a.output_len, a.runs, a.warmup, a.seed, dev,
                                                   not a.eager, not a.eager_prefill)))
                    except torch.cuda.OutOfMemoryError as e:
                        speed.append(row(name, backend, b, l, a.output_len, "oom", str(e).splitlines()[0]))
                    except Exception as e:  # noqa: BLE001
                        speed.append(row(name, backend, b, l, a.output_len, "error", f"{type(e).__name__}: {e}"))
                    torch.cuda.empty_cache()
                    save()
                    r = speed[-1]
                    dec = r["decode_tok_s"]["median"] if r["decode_tok_s"] else None
                    ttft = r["ttft_ms"]["median"] if r["ttft_ms"] else None
                    print(f"{name} bs{b} in{l}: decode {dec and round(dec, 1)} tok/s, TTFT {ttft and round(ttft, 2)} ms"
                          f" [{r['status']}{': ' + r['reason'] if r['reason'] else ''}] ({time.perf_counter() - t:.0f} s)",
                          file=sys.stderr, flush=True)
            del model
            torch._dynamo.reset()
            torch.cuda.empty_cache()
    save()
    print(a.out)

if __name__ == "__main__":
    main()
