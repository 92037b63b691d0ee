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

import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "py"))
from np_llama import forward, greedy, load_gguf  # noqa: E402  (the one numpy Llama, shared with the tests)


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
