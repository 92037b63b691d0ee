"""One float64 numpy Llama forward pass, written from the Llama equations (not from transformers' or
trtforge's code): RMSNorm, rotate-half RoPE (default, linear, dynamic-within-context, `llama3`
scaling, and llama.cpp's per-frequency `rope_freqs` divisors), GQA causal attention, SwiGLU MLP.

The independent oracle shared by tests/py/tiny_hf_llama.py, tests/py/tiny_kquant_llama.py and
scripts/np_llama_ref.py. Weights use HF tensor names; `load_gguf` maps a GGUF file onto them
(dequantized by the `gguf` package, llama.cpp's Q/K row permutation undone as MODELS.md describes).
"""
import math

import numpy as np


def head_dim(cfg) -> int:
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def inv_freq(cfg) -> np.ndarray:
    hd = head_dim(cfg)
    inv = 1.0 / (cfg["rope_theta"] ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
    if cfg.get("rope_divisors") is not None:  # GGUF rope_freqs.weight (Llama 3.1+ files)
        inv = inv / np.asarray(cfg["rope_divisors"], dtype=np.float64)
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "linear":
        inv = inv / rs["factor"]
    elif kind == "llama3":
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        out = np.empty_like(inv)
        for i, f in enumerate(inv):
            wl = 2 * math.pi / f
            if wl < old / hi:  # high frequency: unchanged
                out[i] = f
            elif wl > old / lo:  # low frequency: divided by factor
                out[i] = f / factor
            else:  # in between: interpolate
                s = (old / wl - lo) / (hi - lo)
                out[i] = (1 - s) * f / factor + s * f
        inv = out
    elif kind not in (None, "default", "dynamic"):
        # "dynamic" equals no scaling within max_position_embeddings (the prompts here are shorter).
        raise NotImplementedError(kind)
    return inv


def forward(cfg, w, ids) -> np.ndarray:
    """Logits at every position, float64, shape (len(ids), vocab)."""
    n = len(ids)
    nh, nkv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], head_dim(cfg)
    ang = np.arange(n, dtype=np.float64)[:, None] * inv_freq(cfg)[None, :]
    cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))

    def rms(x, g):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + cfg["rms_norm_eps"]) * g

    def rope(x):  # (heads, T, hd), rotate-half layout
        half = hd // 2
        return x * cos + np.concatenate([-x[..., half:], x[..., :half]], -1) * sin

    mask = np.triu(np.full((n, n), -np.inf), 1)
    x = w["model.embed_tokens.weight"][ids]
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        h = rms(x, w[p + "input_layernorm.weight"])
        q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(n, nh, hd).transpose(1, 0, 2)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(n, nkv, hd).transpose(1, 0, 2)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(n, nkv, hd).transpose(1, 0, 2)
        q, k = rope(q), rope(k)
        k, v = np.repeat(k, nh // nkv, 0), np.repeat(v, nh // nkv, 0)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        a = (s @ v).transpose(1, 0, 2).reshape(n, nh * hd)
        x = x + a @ w[p + "self_attn.o_proj.weight"].T
        h = rms(x, w[p + "post_attention_layernorm.weight"])
        g = h @ w[p + "mlp.gate_proj.weight"].T
        x = x + ((g / (1 + np.exp(-g))) * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    # transformers ties the head to the embedding when the config says so, whatever the file holds.
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else w["lm_head.weight"]
    return rms(x, w["model.norm.weight"]) @ head.T


def greedy(cfg, w, ids, n):
    """n greedy tokens after ids, and the smallest top-1/top-2 logit margin seen on the way."""
    seq, margin = list(ids), float("inf")
    for _ in range(n):
        lg = forward(cfg, w, seq)[-1]
        o = np.argsort(-lg)
        margin = min(margin, float(lg[o[0]] - lg[o[1]]))
        seq.append(int(o[0]))
    return seq[len(ids):], margin


_GGUF_NAMES = {
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def load_gguf(path):
    """(cfg, weights) of a llama GGUF: every tensor dequantized by the `gguf` package to float64."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    r = GGUFReader(path)

    def field(k):
        f = r.fields[k]
        return f.parts[f.data[0]].tolist()[0]

    cfg = {
        "hidden_size": field("llama.embedding_length"),
        "intermediate_size": field("llama.feed_forward_length"),
        "num_hidden_layers": field("llama.block_count"),
        "num_attention_heads": field("llama.attention.head_count"),
        "num_key_value_heads": field("llama.attention.head_count_kv"),
        "rms_norm_eps": field("llama.attention.layer_norm_rms_epsilon"),
        "rope_theta": field("llama.rope.freq_base"),
    }
    hd = head_dim(cfg)
    w = {}
    for t in r.tensors:
        a = dequantize(t.data, t.tensor_type).astype(np.float64)
        a = a.reshape([int(d) for d in reversed(t.shape)]) if a.ndim > 1 else a
        if t.name == "token_embd.weight":
            w["model.embed_tokens.weight"] = a
        elif t.name == "output_norm.weight":
            w["model.norm.weight"] = a
        elif t.name == "output.weight":
            w["lm_head.weight"] = a
        elif t.name == "rope_freqs.weight":
            cfg["rope_divisors"] = a
        else:
            _, layer, kind, _ = t.name.split(".")
            if kind in ("attn_q", "attn_k"):
                heads = cfg["num_attention_heads"] if kind == "attn_q" else cfg["num_key_value_heads"]
                rows, cols = a.shape
                a = a.reshape(heads, hd // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)
            w[f"model.layers.{layer}.{_GGUF_NAMES[kind]}.weight"] = a
    cfg["tie_word_embeddings"] = "lm_head.weight" not in w
    return cfg, w
