#!/usr/bin/env python3
"""A second, plain-numpy (float64) Llama forward, to cross-check tests/fixtures/hf_golden.json.

    python3 scripts/np_llama_ref.py [--golden tests/fixtures/hf_golden.json] [--fixtures tests/fixtures]
                                    [--gguf models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf]
                                    [--hamlet-ids FILE.json]

Needs numpy, safetensors and (for --gguf) the `gguf` package; no torch. Written from the Llama
equations, not from transformers' code: RMSNorm, rotate-half RoPE (default and `llama3` scaling),
GQA causal attention, SwiGLU MLP. For the GGUF it dequantizes with `gguf.quants.dequantize` and
undoes llama.cpp's Q/K row permutation as MODELS.md describes.

Checks against the golden file: every tiny logit (max |diff|), the tiny greedy tokens, and for
SmolLM2 the top-20 last-position logits of each prompt, the first greedy token, and (with
--hamlet-ids, a JSON list of the HF token ids of hamlet_gut.txt) the per-window NLL.
"""
import argparse
import json
import math
import os

import numpy as np


def load_hf_dir(d: str):
    from safetensors.numpy import load_file

    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    idx = os.path.join(d, "model.safetensors.index.json")
    files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) else ["model.safetensors"]
    w = {}
    for fn in files:
        w.update({k: v.astype(np.float64) for k, v in load_file(os.path.join(d, fn)).items()})
    if cfg.get("tie_word_embeddings"):
        assert "lm_head.weight" not in w
        w["lm_head.weight"] = w["model.embed_tokens.weight"]
    return cfg, w


def load_gguf(path: str):
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
    cfg["head_dim"] = cfg["hidden_size"] // cfg["num_attention_heads"]
    names = {
        "token_embd.weight": "model.embed_tokens.weight",
        "output_norm.weight": "model.norm.weight",
        "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
        "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
        "ffn_down": "mlp.down_proj",
    }
    w = {}
    for t in r.tensors:
        a = dequantize(t.data, t.tensor_type).astype(np.float64)
        if t.name in names:
            w[names[t.name]] = a
            continue
        _, layer, kind, _ = t.name.split(".")
        if kind in ("attn_q", "attn_k"):
            n = cfg["num_attention_heads"] if kind == "attn_q" else cfg["num_key_value_heads"]
            rows, cols = a.shape
            a = a.reshape(n, cfg["head_dim"] // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)
        w[f"model.layers.{layer}.{names[kind]}.weight"] = a
    assert "output.weight" not in [t.name for t in r.tensors]
    w["lm_head.weight"] = w["model.embed_tokens.weight"]
    return cfg, w


def inv_freq(cfg) -> np.ndarray:
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    inv = 1.0 / (cfg["rope_theta"] ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type", rs.get("type")) == "llama3":
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        out = np.empty_like(inv)
        for i, (f, wl) in enumerate(zip(inv, wavelen)):
            if wl < old / hi:  # high frequency: unchanged
                out[i] = f
            elif wl > old / lo:  # low frequency: divided by factor
                out[i] = f / factor
            else:  # in between: interpolate
                s = (old / wl - lo) / (hi - lo)
                out[i] = (1 - s) * f / factor + s * f
        inv = out
    elif rs:
        raise NotImplementedError(rs)
    return inv


def forward(cfg, w, ids) -> np.ndarray:
    """All-position logits, float64."""
    T = len(ids)
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or cfg["hidden_size"] // nh
    eps = cfg["rms_norm_eps"]

    def rms(x, g):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g

    ang = np.arange(T, dtype=np.float64)[:, None] * inv_freq(cfg)[None, :]
    cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))

    def rope(x):  # x: (heads, T, hd), rotate-half layout
        half = hd // 2
        rot = np.concatenate([-x[..., half:], x[..., :half]], -1)
        return x * cos + rot * sin

    mask = np.triu(np.full((T, T), -np.inf), 1)
    x = w["model.embed_tokens.weight"][ids]
    for L in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{L}."
        h = rms(x, w[p + "input_layernorm.weight"])
        q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(T, nh, hd).transpose(1, 0, 2)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(T, nkv, hd).transpose(1, 0, 2)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(T, nkv, hd).transpose(1, 0, 2)
        q, k = rope(q), rope(k)
        k, v = np.repeat(k, nh // nkv, 0), np.repeat(v, nh // nkv, 0)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        a = (s @ v).transpose(1, 0, 2).reshape(T, nh * hd)
        x = x + a @ w[p + "self_attn.o_proj.weight"].T
        h = rms(x, w[p + "post_attention_layernorm.weight"])
        g = h @ w[p + "mlp.gate_proj.weight"].T
        u = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (g / (1 + np.exp(-g)) * u) @ w[p + "mlp.down_proj.weight"].T
    return rms(x, w["model.norm.weight"]) @ w["lm_head.weight"].T


def greedy(cfg, w, ids, n):
    seq, margins = list(ids), []
    for _ in range(n):
        lg = forward(cfg, w, seq)[-1]
        o = np.argsort(-lg)
        margins.append(lg[o[0]] - lg[o[1]])
        seq.append(int(o[0]))
    return seq[len(ids):], min(margins)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser()
    ap.add_argument("--golden", default=os.path.join(root, "tests", "fixtures", "hf_golden.json"))
    ap.add_argument("--fixtures", default=os.path.join(root, "tests", "fixtures"))
    ap.add_argument("--gguf")
    ap.add_argument("--hamlet-ids")
    args = ap.parse_args()
    g = json.load(open(args.golden))
    ok = True
    for name, case in g.get("tiny", {}).items():
        cfg, w = load_hf_dir(os.path.join(args.fixtures, name))
        for pi, ids in enumerate(case["prompt_ids"]):
            d = np.abs(forward(cfg, w, ids) - np.array(case["logits"][pi])).max()
            new, margin = greedy(cfg, w, ids, len(case["greedy_ids"][pi]))
            same = new == case["greedy_ids"][pi]
            ok &= bool(d < 1e-4 and same)
            print(f"{name} prompt {pi}: max |numpy - HF| logit {d:.2e}; greedy {'same' if same else 'DIFFERENT'}"
                  f" (numpy min top-2 margin {margin:.4g}, {len(set(new))} distinct tokens)")
    if args.gguf and "smollm2" in g:
        cfg, w = load_gguf(args.gguf)
        for case in g["smollm2"]["prompts"]:
            lg = forward(cfg, w, case["ids"])[-1]
            d = max(abs(lg[i] - v) for i, v in case["last_logits_top"])
            first = int(np.argmax(lg))
            ok &= bool(d < 2e-3 and first == case["greedy_ids"][0])
            print(f"smollm2 {case['text']!r}: max |numpy - HF| over top-20 logits {d:.2e}; "
                  f"first greedy token {first} vs HF {case['greedy_ids'][0]}")
        if args.hamlet_ids:
            ppl = g["smollm2"]["perplexity"]
            ids = json.load(open(args.hamlet_ids))
            assert len(ids) == ppl["tokens_in_file"], (len(ids), ppl["tokens_in_file"])
            nlls = []
            for wi in range(ppl["windows"]):
                win = ids[wi * ppl["ctx"]:(wi + 1) * ppl["ctx"]]
                lg = forward(cfg, w, win)[:-1]
                m = lg.max(-1, keepdims=True)
                lp = lg - m - np.log(np.exp(lg - m).sum(-1, keepdims=True))
                nlls.append(float(-lp[np.arange(len(win) - 1), win[1:]].mean()))
            p = math.exp(sum(nlls) / len(nlls))
            ok &= abs(p - ppl["perplexity"]) / ppl["perplexity"] < 1e-3
            print(f"smollm2 perplexity numpy {p:.5f} (nll {[round(x, 6) for x in nlls]}) vs HF {ppl['perplexity']}")
    print("ALL AGREE" if ok else "MISMATCH")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
