#!/usr/bin/env python3
"""Tiny HF Llama checkpoint directories "as they come" and what a float64 numpy forward pass with
transformers' semantics computes for them: the oracle for trtforge's HF loader (tests/byo.rs).

    python3 tests/py/tiny_hf_llama.py OUT_DIR

Each OUT_DIR/<case>/ is a checkpoint directory (config.json, safetensors written here byte by
byte, tokenizer files, generation_config.json); OUT_DIR/expected.json lists, per case, either the
prompt ids and the logits at every position, or the config.json field the loader must name when it
refuses the checkpoint.

- `bf16_sharded`: bf16 weights in two shards + index, `head_dim` given explicitly (heads x head_dim
  != hidden_size), `tie_word_embeddings: true` while the file also holds a different
  `lm_head.weight` (transformers ties: the embedding is the head), linear RoPE scaling,
  generation_config.json with two eos ids, tokenizer_config.json with the special tokens and a
  chat template.
- `f32_untied_dynamic`: one f32 file, untied head, dynamic RoPE scaling (equal to none within
  max_position_embeddings, as in transformers).
- refusals: an unknown architecture, a quantization_config, yarn RoPE scaling, attention_bias.
"""
import json
import math
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from np_llama import forward  # noqa: E402

VOCAB = 300  # tests/fixtures/tiny_tokenizer.json
PROMPT = [1, 17, 200, 45, 99, 3, 250, 12, 7, 60]


def bf16_round(a):
    """float32 -> the nearest bfloat16 (round to nearest even), returned as (float32 values, raw u16)."""
    bits = a.astype(np.float32).view(np.uint32)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    return (rounded.astype(np.uint32) << 16).view(np.float32), rounded


def write_safetensors(path, tensors, dtype):
    """A safetensors file from {name: float32 array}; dtype "F32" or "BF16". Returns the stored values."""
    header, blobs, stored, offset = {}, [], {}, 0
    for name, a in tensors.items():
        if dtype == "BF16":
            vals, raw = bf16_round(a)
            data = raw.astype("<u2").tobytes()
        else:
            vals = a.astype(np.float32)
            data = vals.astype("<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        stored[name] = vals.astype(np.float64)
        offset += len(data)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)
    return stored


def random_weights(rng, cfg, with_head):
    h, hd = cfg["hidden_size"], cfg["head_dim"]
    q, kv, ffn = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd, cfg["intermediate_size"]

    def lin(o, i):
        return rng.uniform(-1, 1, size=(o, i)).astype(np.float32) / math.sqrt(i)

    w = {"model.embed_tokens.weight": rng.normal(0, 1, size=(VOCAB, h)).astype(np.float32)}
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        w[p + "input_layernorm.weight"] = rng.uniform(0.8, 1.2, size=h).astype(np.float32)
        w[p + "self_attn.q_proj.weight"] = lin(q, h)
        w[p + "self_attn.k_proj.weight"] = lin(kv, h)
        w[p + "self_attn.v_proj.weight"] = lin(kv, h)
        w[p + "self_attn.o_proj.weight"] = lin(h, q)
        w[p + "post_attention_layernorm.weight"] = rng.uniform(0.8, 1.2, size=h).astype(np.float32)
        w[p + "mlp.gate_proj.weight"] = lin(ffn, h)
        w[p + "mlp.up_proj.weight"] = lin(ffn, h)
        w[p + "mlp.down_proj.weight"] = lin(h, ffn)
    w["model.norm.weight"] = rng.uniform(0.8, 1.2, size=h).astype(np.float32)
    if with_head:
        w["lm_head.weight"] = lin(VOCAB, h)
    return w


BASE = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": VOCAB,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "hidden_act": "silu",
    "max_position_embeddings": 256,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "attention_bias": False,
    "mlp_bias": False,
    "pretraining_tp": 1,
    "bos_token_id": 1,
    "eos_token_id": 2,
}


def write_dir(d, cfg, files, extra=None):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    for name, text in (extra or {}).items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)


def main() -> None:
    out = sys.argv[1]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tokenizer_json = os.path.join(root, "fixtures", "tiny_tokenizer.json")
    rng = np.random.default_rng(5)
    expected = {}

    # bf16, two shards, explicit head_dim, tied with a decoy lm_head, linear RoPE.
    cfg = dict(BASE, hidden_size=96, intermediate_size=160, num_attention_heads=4, head_dim=32,
               tie_word_embeddings=True, torch_dtype="bfloat16",
               rope_scaling={"rope_type": "linear", "factor": 2.0})
    d = os.path.join(out, "bf16_sharded")
    w = random_weights(rng, cfg, with_head=True)
    names = sorted(w)
    half = len(names) // 2
    stored, weight_map = {}, {}
    os.makedirs(d, exist_ok=True)
    for i, part in enumerate((names[:half], names[half:])):
        fn = f"model-0000{i + 1}-of-00002.safetensors"
        stored.update(write_safetensors(os.path.join(d, fn), {n: w[n] for n in part}, "BF16"))
        weight_map.update({n: fn for n in part})
    tok_cfg = {
        "bos_token": {"content": "<s>", "special": True},
        "eos_token": "</s>",
        "unk_token": None,
        "add_bos_token": True,
        "chat_template": "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] "
        "+ '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    }
    write_dir(d, cfg, None, {
        "model.safetensors.index.json": json.dumps({"metadata": {}, "weight_map": weight_map}),
        "generation_config.json": json.dumps({"bos_token_id": 1, "eos_token_id": [2, 4]}),
        "tokenizer_config.json": json.dumps(tok_cfg),
    })
    shutil.copy(tokenizer_json, os.path.join(d, "tokenizer.json"))
    expected["bf16_sharded"] = {"prompt_ids": PROMPT, "logits": forward(cfg, stored, PROMPT).tolist(),
                                "eos_ids": [2, 4], "q_dim": 128}

    # f32, one file, untied, dynamic RoPE.
    cfg = dict(BASE, hidden_size=64, intermediate_size=128, num_attention_heads=4, head_dim=16,
               tie_word_embeddings=False, torch_dtype="float32",
               rope_scaling={"type": "dynamic", "factor": 4.0})
    d = os.path.join(out, "f32_untied_dynamic")
    w = random_weights(rng, cfg, with_head=True)
    os.makedirs(d, exist_ok=True)
    stored = write_safetensors(os.path.join(d, "model.safetensors"), w, "F32")
    write_dir(d, cfg, None)
    expected["f32_untied_dynamic"] = {"prompt_ids": PROMPT, "logits": forward(cfg, stored, PROMPT).tolist()}

    # Refusals, each naming the field.
    small = dict(BASE, hidden_size=64, intermediate_size=128, num_attention_heads=4, tie_word_embeddings=True)
    for name, patch, field in [
        ("refuse_arch", {"architectures": ["MistralForCausalLM"], "model_type": "mistral"}, "MistralForCausalLM"),
        ("refuse_quant", {"quantization_config": {"quant_method": "gptq", "bits": 4}}, "quantization_config"),
        ("refuse_yarn", {"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "yarn"),
        ("refuse_bias", {"attention_bias": True}, "attention_bias"),
    ]:
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        write_safetensors(os.path.join(d, "model.safetensors"), {"x": np.zeros(1, np.float32)}, "F32")
        write_dir(d, dict(small, **patch), None)
        expected[name] = {"refused_naming": field}

    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)


if __name__ == "__main__":
    main()
