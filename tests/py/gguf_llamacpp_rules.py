#!/usr/bin/env python3
"""Small GGUF files, written by gguf-py, that llama.cpp either honours in a way that is easy to get wrong or
refuses, and what an independent implementation expects of each (driven by tests/byo.rs):

    python3 tests/py/gguf_llamacpp_rules.py OUT_DIR refusals|rope|bos
    python3 tests/py/gguf_llamacpp_rules.py OUT_DIR default_pre SMOLLM2_GGUF [TEXT_FILE]

Writes OUT_DIR/<case>.gguf files and OUT_DIR/expected.json:

- refusals: files llama.cpp refuses (bias tensors, tensors a llama model does not have, byte-level BPE without
  merges, partial rotary, value_length unlike the head size, mixture of experts, big-endian, two tensors sharing
  bytes); each with the key or tensor names the error must give.
- rope: `llama.rope.scaling.factor` without `llama.rope.scaling.type`, and the older `llama.rope.scale_linear`
  alone: llama.cpp's type defaults to linear and the factor falls back to scale_linear. Logits of a float64
  numpy forward pass (tests/py/np_llama.py over gguf-py's reading of the file) with positions divided by the
  factor, and without (to show the fixture tells the two apart).
- bos: byte-level BPE vocabularies without `tokenizer.ggml.add_bos_token`: llama.cpp's default (llama-vocab.cpp)
  is to add bos for its Llama 3 pre-tokenizers (`llama-bpe`, `llama3`, `llama-v3`, `falcon3`) and not for
  others (`smaug-bpe`); the key, when present, wins. Ids from the oracle below.
- default_pre: SmolLM2's vocabulary with no `tokenizer.ggml.pre` and with `pre = "default"`: llama.cpp
  tokenizes both with its DEFAULT pre-tokenizer regexes. Ids from the oracle below.

The tokenizer oracle is written here from llama.cpp's rules, not from trtforge's or HF's code: each regex of
the pre-tokenizer applied in turn with Python's `regex` module, splitting every piece the previous one left
into its matches and the text between them; GPT-2's byte-to-unicode mapping; then BPE that repeatedly merges
the adjacent pair of lowest merge rank (leftmost first), a whole piece found in the vocabulary being taken
as is under `ignore_merges`.
"""
import json
import os
import struct
import sys

import numpy as np
import regex
import gguf
from gguf import GGUFReader, GGUFValueType as V

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from np_llama import forward, load_gguf  # noqa: E402

HIDDEN, FFN, LAYERS, HEADS, KV_HEADS, CTX = 64, 128, 2, 4, 2, 128
HEAD_DIM = HIDDEN // HEADS

# llama.cpp's pre-tokenizer regexes (src/llama-vocab.cpp, llm_tokenizer_bpe).
LLAMA_CPP_DEFAULT = [
    r"[\p{P}\$\+<=>\^~\|]+",
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)",
    r"\p{N}+",
    r"[0-9][0-9][0-9]",
]
LLAMA_CPP_LLAMA3 = [
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
]


def byte_to_unicode():
    """GPT-2's reversible byte -> printable character table."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


B2U = byte_to_unicode()


def split(text, regexes):
    pieces = [text]
    for expr in regexes:
        pat = regex.compile(expr)
        out = []
        for p in pieces:
            at = 0
            for m in pat.finditer(p):
                if m.start() > at:
                    out.append(p[at : m.start()])
                if m.end() > m.start():
                    out.append(m.group())
                at = m.end()
            if at < len(p):
                out.append(p[at:])
        pieces = out
    return pieces


def bpe_ids(text, regexes, vocab, ranks, ignore_merges=False):
    ids = []
    for piece in split(text, regexes):
        word = "".join(B2U[b] for b in piece.encode("utf-8"))
        if ignore_merges and word in vocab:
            ids.append(vocab[word])
            continue
        syms = list(word)
        while len(syms) > 1:
            best = min(range(len(syms) - 1), key=lambda i: (ranks.get((syms[i], syms[i + 1]), 1 << 60), i))
            if (syms[best], syms[best + 1]) not in ranks:
                break
            syms[best : best + 2] = [syms[best] + syms[best + 1]]
        ids.extend(vocab[s] for s in syms)
    return ids


def tiny_bpe_vocab():
    """A byte-level vocabulary: <s>, </s>, the 256 byte characters, and a few merges."""
    tokens = ["<s>", "</s>"] + [B2U[b] for b in range(256)]
    merges = ["h e", "l l", "ll o", "he llo", "Ġ w", "o r", "l d", "Ġw or", "Ġwor ld", "Ġ Ġ", "1 2", "12 3"]
    for m in merges:
        tokens.append(m.replace(" ", ""))
    types = [3, 3] + [1] * (len(tokens) - 2)
    return tokens, merges, types


def write_model(path, *, meta=(), extra_tensors=(), endian=gguf.GGUFEndian.LITTLE, seed=0, pre="smollm", add_bos=None,
                merges=True, key_length=True, rope_dim=HEAD_DIM):
    """A tiny random F32 llama GGUF with the tiny byte-level vocabulary; `meta` (key, type, value) are added."""
    rng = np.random.default_rng(seed)
    tokens, merge_list, types = tiny_bpe_vocab()
    w = gguf.GGUFWriter(path, arch="llama", endianess=endian)
    w.add_context_length(CTX)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    if key_length:
        w.add_key_length(HEAD_DIM)
        w.add_value_length(HEAD_DIM)
    w.add_rope_dimension_count(rope_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    if pre is not None:
        w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    if merges:
        w.add_token_merges(merge_list)
    w.add_bos_token_id(0)
    w.add_eos_token_id(1)
    if add_bos is not None:
        w.add_add_bos_token(add_bos)
    for key, vt, val in meta:
        w.add_key_value(key, val, vt)

    def t(name, shape, scale=None):
        if scale is None:  # norms
            w.add_tensor(name, rng.uniform(0.8, 1.2, size=shape).astype(np.float32))
        else:
            w.add_tensor(name, (rng.standard_normal(shape) * scale / np.sqrt(shape[-1])).astype(np.float32))

    t("token_embd.weight", (len(tokens), HIDDEN), 4.0)
    for layer in range(LAYERS):
        p = f"blk.{layer}."
        t(p + "attn_norm.weight", (HIDDEN,))
        t(p + "attn_q.weight", (HEADS * HEAD_DIM, HIDDEN), 2.0)
        t(p + "attn_k.weight", (KV_HEADS * HEAD_DIM, HIDDEN), 2.0)
        t(p + "attn_v.weight", (KV_HEADS * HEAD_DIM, HIDDEN), 1.0)
        t(p + "attn_output.weight", (HIDDEN, HEADS * HEAD_DIM), 1.0)
        t(p + "ffn_norm.weight", (HIDDEN,))
        t(p + "ffn_gate.weight", (FFN, HIDDEN), 1.0)
        t(p + "ffn_up.weight", (FFN, HIDDEN), 1.0)
        t(p + "ffn_down.weight", (HIDDEN, FFN), 1.0)
    t("output_norm.weight", (HIDDEN,))
    for name, shape in extra_tensors:
        t(name, shape, 1.0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def shift_tensor_offset(path, name, delta):
    """Moves one tensor's data offset in the header by `delta` bytes (the data itself stays put)."""
    data = bytearray(open(path, "rb").read())
    key = struct.pack("<Q", len(name)) + name.encode()
    at = data.index(key) + len(key)
    n_dims = struct.unpack_from("<I", data, at)[0]
    at += 4 + 8 * n_dims + 4  # dims, then the ggml type; the offset follows
    struct.pack_into("<Q", data, at, struct.unpack_from("<Q", data, at)[0] + delta)
    open(path, "wb").write(data)


def refusals(out):
    cases = {}

    def case(name, needles, **kw):
        write_model(os.path.join(out, name + ".gguf"), **kw)
        cases[name] = {"refused_naming": needles}

    # llama.cpp's llama graph adds these (optional) biases: running without them is another model.
    case("bias", ["bias tensors are not supported", "blk.0.attn_q.bias", "blk.1.ffn_down.bias"],
         extra_tensors=[("blk.0.attn_q.bias", (HEADS * HEAD_DIM,)), ("blk.0.attn_v.bias", (KV_HEADS * HEAD_DIM,)),
                        ("blk.1.ffn_down.bias", (HIDDEN,))])
    # Any other tensor: llama.cpp "wrong number of tensors".
    case("unknown_tensors", ["foo.weight", "blk.0.attn_q_norm.weight", "wrong number of tensors"],
         extra_tensors=[("foo.weight", (8, 32)), ("blk.0.attn_q_norm.weight", (HEAD_DIM,))])
    # "cannot find tokenizer merges in model file"
    case("bpe_without_merges", ["tokenizer.ggml.merges"], merges=False)
    # "invalid n_rot": rotary dimension 8 of a 16-wide head, with and without key_length.
    case("partial_rotary", ["llama.rope.dimension_count = 8", "partial rotary", "llama.attention.key_length"],
         rope_dim=8)
    case("partial_rotary_no_key_length", ["llama.rope.dimension_count = 8", "partial rotary", "embedding_length"],
         rope_dim=8, key_length=False)
    # llama.cpp's llama graph asserts equal K and V head sizes.
    case("value_length", ["llama.attention.value_length = 32"],
         meta=[("llama.attention.value_length", V.UINT32, 32)], key_length=False)
    # Mixture of experts (Mixtral-style files are llama files with expert tensors).
    case("mixture_of_experts", ["llama.expert_count = 4"],
         meta=[("llama.expert_count", V.UINT32, 4), ("llama.expert_used_count", V.UINT32, 2)])
    # A big-endian file, as gguf-py writes on request.
    case("big_endian", ["big-endian"], endian=gguf.GGUFEndian.BIG)
    # A tensor whose offset points 32 bytes into its neighbour's data (ggml: offsets must be the running sum
    # of the padded sizes).
    case("overlapping_tensors", ["blk.0.ffn_up.weight", "overlaps", "blk.0.ffn_gate.weight"])
    shift_tensor_offset(os.path.join(out, "overlapping_tensors.gguf"), "blk.0.ffn_up.weight", -32)
    # A positive control: a stored head (untied embeddings) is read, not refused.
    head = ("output.weight", (len(tiny_bpe_vocab()[0]), HIDDEN))
    write_model(os.path.join(out, "untied_head.gguf"), extra_tensors=[head])
    cases["untied_head"] = {"loads": True}
    return cases


PROMPT_IDS = [2 + b for b in b"Rotary positions at scale."]


def rope(out):
    cases = {}
    for name, meta in [
        ("factor_without_type", [("llama.rope.scaling.factor", V.FLOAT32, 4.0)]),
        ("legacy_scale_linear", [("llama.rope.scale_linear", V.FLOAT32, 4.0)]),
    ]:
        path = os.path.join(out, name + ".gguf")
        write_model(path, meta=meta, seed=3)
        cfg, weights = load_gguf(path)
        plain = forward(cfg, weights, PROMPT_IDS)
        cfg["rope_scaling"] = {"type": "linear", "factor": 4.0}
        scaled = forward(cfg, weights, PROMPT_IDS)
        cases[name] = {
            "prompt_ids": PROMPT_IDS,
            "factor": 4.0,
            "logits": scaled.tolist(),
            "max_diff_unscaled": float(np.abs(scaled - plain).max()),
        }
    return cases


BOS_TEXT = "hello world, 12345 hello"


def bos(out):
    tokens, merges, _ = tiny_bpe_vocab()
    vocab = {t: i for i, t in enumerate(tokens)}
    ranks = {tuple(m.split(" ")): i for i, m in enumerate(merges)}
    cases = {}
    for name, pre, add_bos, want_bos in [
        ("llama_bpe_no_key", "llama-bpe", None, True),
        ("llama3_no_key", "llama3", None, True),
        ("llama_bpe_key_false", "llama-bpe", False, False),
        ("smaug_bpe_no_key", "smaug-bpe", None, False),
    ]:
        write_model(os.path.join(out, name + ".gguf"), pre=pre, add_bos=add_bos)
        ids = bpe_ids(BOS_TEXT, LLAMA_CPP_LLAMA3, vocab, ranks, ignore_merges=(pre != "smaug-bpe"))
        cases[name] = {"text": BOS_TEXT, "ids": ([0] if want_bos else []) + ids}
    return cases


DEFAULT_PRE_TEXTS = [
    "Hello, world! It's 2024: $1,234,567.89 + 42% = ?",
    "Wait , what ?! (yes) $100 + 2 = 102 ... \"quoted\" <a href='x'>|~^</a>",
    "pi=3.14159265358979, 1234567 and 12 345 6789012",
    "  leading spaces,\ttabs\n\nnewlines   and   runs   ",
    "Unicode “quotes” — dashes… «guillemets» ¡hola! ¿qué? 你好，世界。 ١٢٣٤٥ ⅷ ½",
    "emoji 👍🏽 and accents: café naïve Ærøskøbing; I'm you're we'll they'd IT'S",
    "code: fn main() { let x = a[i] * (b - c) / d; } // done #tag @user `tick`",
]


def default_pre(out, smol_path, text_file=None):
    r = GGUFReader(smol_path)
    fields = {k: f for k, f in r.fields.items() if k.startswith("tokenizer.")}
    tokens = [str(t) for t in fields["tokenizer.ggml.tokens"].contents()]
    merges = [str(m) for m in fields["tokenizer.ggml.merges"].contents()]
    vocab = {t: i for i, t in enumerate(tokens)}
    ranks = {tuple(m.split(" ", 1)): i for i, m in enumerate(merges)}
    texts = list(DEFAULT_PRE_TEXTS)
    if text_file:
        with open(text_file, encoding="utf-8") as f:
            texts.append(f.read()[20000:24000])
    for name, pre in [("no_pre", None), ("pre_default", "default")]:
        w = gguf.GGUFWriter(os.path.join(out, name + ".gguf"), arch="llama")
        for k, f in fields.items():
            if k == "tokenizer.ggml.pre" or k.startswith("tokenizer.chat_template"):
                continue
            vt = f.types[0]
            w.add_key_value(k, f.contents(), vt, sub_type=f.types[-1] if vt == V.ARRAY else None)
        if pre is not None:
            w.add_tokenizer_pre(pre)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.close()
    cases = [{"text": t, "ids": bpe_ids(t, LLAMA_CPP_DEFAULT, vocab, ranks)} for t in texts]
    # The fixture must tell llama.cpp's default rules from plain GPT-2 splitting.
    gpt2 = [bpe_ids(t, [LLAMA_CPP_DEFAULT[1]], vocab, ranks) for t in texts]
    return {"files": ["no_pre", "pre_default"], "cases": cases,
            "texts_unlike_gpt2": sum(c["ids"] != g for c, g in zip(cases, gpt2))}


def main():
    out, what = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    if what == "default_pre":
        expected = default_pre(out, sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    else:
        expected = {"refusals": refusals, "rope": rope, "bos": bos}[what](out)
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)


if __name__ == "__main__":
    main()
