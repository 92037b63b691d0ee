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
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from np_llama import forward, greedy, load_gguf  # noqa: E402
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

    cfg, ref = load_gguf(path)
    prompt = [sp.bos_id()] + sp.encode(PROMPT)
    logits = forward(cfg, ref, prompt)
    greedy_ids, margin = greedy(cfg, ref, prompt, N_NEW)
    expected = {
        "prompt": PROMPT,
        "prompt_ids": prompt,
        "logits": logits.tolist(),
        "greedy_ids": greedy_ids,
        "min_greedy_margin": margin,
        "logit_std": float(logits.std()),
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)
    print(json.dumps({k: expected[k] for k in ("prompt_ids", "greedy_ids", "min_greedy_margin", "logit_std")}))


if __name__ == "__main__":
    main()
