#!/usr/bin/env python3
"""A tiny Llama GGUF the way a downloaded Q4_K_M file is built -- a SentencePiece vocabulary
(trained here) and Q4_K / Q5_K / Q6_K weights -- and what an independent float64 numpy forward pass
over the `gguf` package's dequantization of that file computes (RoPE scaled by a
`rope_freqs.weight` as in Llama 3.1+ files): the oracle for trtforge's
end-to-end GGUF path (tests/byo.rs).

    python3 tests/py/tiny_kquant_llama.py OUT_DIR [--no-rope-freqs]

Writes OUT_DIR/tiny-q4_k_m.gguf and OUT_DIR/expected.json: the prompt text, SentencePiece's ids
for it (bos first), the logits at every prompt position, and 8 greedy tokens with the smallest
top-1/top-2 logit margin seen (so a test can tell a real disagreement from a near-tie).

The weights are random quantized blocks with scales chosen so the dequantized values have a
typical initialisation's size; the LM head gets larger scales so greedy choices are clear-cut.
The reference is written from the Llama equations (RMSNorm, rotate-half RoPE, GQA causal
attention, SwiGLU) and undoes llama.cpp's Q/K row permutation as tests/../MODELS.md describes.
"""
import json
import math
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spm_gguf import add_spm_vocab, train  # noqa: E402

HIDDEN, FFN, LAYERS, HEADS, KV_HEADS, CTX = 256, 512, 2, 4, 2, 256
HEAD_DIM = HIDDEN // HEADS
EPS, THETA = 1e-5, 10000.0
PROMPT = "The quick brown fox jumps over 3 lazy dogs"
N_NEW = 8
# Llama 3.1-style RoPE scaling as llama.cpp stores it: one divisor per frequency.
ROPE_DIVISORS = np.linspace(1.0, 8.0, HEAD_DIM // 2).astype(np.float32)


def random_blocks(rng, qt, rows, cols, scale):
    """Random bytes for a rows x cols tensor of type qt, scale fields set so values are ~scale."""
    block, size = GGML_QUANT_SIZES[qt]
    nb = cols // block
    raw = rng.integers(0, 256, size=(rows, nb, size), dtype=np.uint8)

    def put(off, v):
        raw[:, :, off : off + 2] = v.astype(np.float16).view(np.uint8).reshape(rows, nb, 2)

    u = rng.uniform(0.5, 1.5, size=(rows, nb))
    if qt == T.Q4_K:  # w = d*sc*q - dmin*m, sc, m < 64, q < 16
        put(0, u * scale / (31 * 4.5))
        put(2, u * scale * 7.5 / (31 * 4.5))
    elif qt == T.Q5_K:  # q < 32
        put(0, u * scale / (31 * 9))
        put(2, u * scale * 15.5 / (31 * 9))
    elif qt == T.Q6_K:  # w = d*sc*(q-32), sc int8
        put(208, u * scale / (64 * 18))
    else:
        raise ValueError(qt)
    return raw.reshape(rows, nb * size)


def forward(w, ids):
    """Logits (T, vocab), float64."""
    n = len(ids)
    inv = 1.0 / (THETA ** (np.arange(0, HEAD_DIM, 2, dtype=np.float64) / HEAD_DIM))
    if "rope_freqs.weight" in w:
        inv = inv / w["rope_freqs.weight"]
    ang = np.arange(n, dtype=np.float64)[:, None] * inv[None, :]
    cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))

    def rms(x, g):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + EPS) * g

    def rope(x):  # (heads, T, hd), rotate-half
        half = HEAD_DIM // 2
        return x * cos + np.concatenate([-x[..., half:], x[..., :half]], -1) * sin

    mask = np.triu(np.full((n, n), -np.inf), 1)
    x = w["token_embd.weight"][ids]
    for layer in range(LAYERS):
        p = f"blk.{layer}."
        h = rms(x, w[p + "attn_norm.weight"])
        q = (h @ w[p + "attn_q.weight"].T).reshape(n, HEADS, HEAD_DIM).transpose(1, 0, 2)
        k = (h @ w[p + "attn_k.weight"].T).reshape(n, KV_HEADS, HEAD_DIM).transpose(1, 0, 2)
        v = (h @ w[p + "attn_v.weight"].T).reshape(n, KV_HEADS, HEAD_DIM).transpose(1, 0, 2)
        q, k = rope(q), rope(k)
        k, v = np.repeat(k, HEADS // KV_HEADS, 0), np.repeat(v, HEADS // KV_HEADS, 0)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(HEAD_DIM) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        a = (s @ v).transpose(1, 0, 2).reshape(n, HEADS * HEAD_DIM)
        x = x + a @ w[p + "attn_output.weight"].T
        h = rms(x, w[p + "ffn_norm.weight"])
        g = h @ w[p + "ffn_gate.weight"].T
        x = x + ((g / (1 + np.exp(-g))) * (h @ w[p + "ffn_up.weight"].T)) @ w[p + "ffn_down.weight"].T
    return rms(x, w["output_norm.weight"]) @ w["output.weight"].T


def load_reference_weights(path):
    """Every tensor of the file, dequantized by the gguf package, Q/K rows back in HF order."""
    r = gguf.GGUFReader(path)
    w = {}
    for t in r.tensors:
        a = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64)
        a = a.reshape([int(d) for d in reversed(t.shape)]) if a.ndim > 1 else a
        kind = t.name.split(".")[-2] if t.name.startswith("blk.") else ""
        if kind in ("attn_q", "attn_k"):
            heads = HEADS if kind == "attn_q" else KV_HEADS
            rows, cols = a.shape
            a = a.reshape(heads, HEAD_DIM // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)
        w[t.name] = a
    return w


def main() -> None:
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(1)
    sp = train(os.path.join(out, "spm"))
    vocab = sp.get_piece_size()
    path = os.path.join(out, "tiny-q4_k_m.gguf")
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_name("tiny-q4_k_m")
    w.add_context_length(CTX)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(THETA)
    w.add_layer_norm_rms_eps(EPS)
    w.add_vocab_size(vocab)
    add_spm_vocab(w, sp)
    # TinyLlama-Chat's template.
    w.add_chat_template(
        "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + "
        "eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
        "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
        "{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"
    )

    def norm(name, n):
        w.add_tensor(name, rng.uniform(0.8, 1.2, size=n).astype(np.float32))

    def quant(name, qt, rows, cols, scale):
        w.add_tensor(name, random_blocks(rng, qt, rows, cols, scale), raw_dtype=qt)

    # Q4_K_M's mix: Q4_K for most, Q6_K for the embeddings, attn_v, ffn_down and the LM head; Q5_K here
    # for attn_output and ffn_up so all three K-quant types feed the forward pass.
    quant("token_embd.weight", T.Q6_K, vocab, HIDDEN, 1.0)
    for layer in range(LAYERS):
        p = f"blk.{layer}."
        norm(p + "attn_norm.weight", HIDDEN)
        quant(p + "attn_q.weight", T.Q4_K, HEADS * HEAD_DIM, HIDDEN, 0.08)
        quant(p + "attn_k.weight", T.Q4_K, KV_HEADS * HEAD_DIM, HIDDEN, 0.08)
        quant(p + "attn_v.weight", T.Q6_K, KV_HEADS * HEAD_DIM, HIDDEN, 0.05)
        quant(p + "attn_output.weight", T.Q5_K, HIDDEN, HEADS * HEAD_DIM, 0.05)
        norm(p + "ffn_norm.weight", HIDDEN)
        quant(p + "ffn_gate.weight", T.Q4_K, FFN, HIDDEN, 0.06)
        quant(p + "ffn_up.weight", T.Q5_K, FFN, HIDDEN, 0.06)
        quant(p + "ffn_down.weight", T.Q6_K, HIDDEN, FFN, 0.04)
    norm("output_norm.weight", HIDDEN)
    if "--no-rope-freqs" not in sys.argv:
        w.add_tensor("rope_freqs.weight", ROPE_DIVISORS)
    quant("output.weight", T.Q6_K, vocab, HIDDEN, 0.25)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    ref = load_reference_weights(path)
    prompt = [sp.bos_id()] + sp.encode(PROMPT)
    logits = forward(ref, prompt)
    ids = list(prompt)
    greedy, margin = [], float("inf")
    for _ in range(N_NEW):
        last = forward(ref, ids)[-1]
        top = np.sort(last)[-2:]
        margin = min(margin, float(top[1] - top[0]))
        nxt = int(np.argmax(last))
        greedy.append(nxt)
        ids.append(nxt)
    expected = {
        "prompt": PROMPT,
        "prompt_ids": prompt,
        "logits": logits.tolist(),
        "greedy_ids": greedy,
        "min_greedy_margin": margin,
        "logit_std": float(logits.std()),
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)
    print(json.dumps({k: expected[k] for k in ("prompt_ids", "greedy_ids", "min_greedy_margin", "logit_std")}))


if __name__ == "__main__":
    main()
