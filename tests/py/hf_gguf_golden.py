#!/usr/bin/env python3
"""HF transformers' own GGUF loading of the tiny Q4_K_M-style file, as a second oracle beside the
numpy forward (for the GPU machine, which has torch; CPU torch works too).

    python3 tests/py/hf_gguf_golden.py OUT_DIR [TRTFORGE_BIN]

Builds OUT_DIR/tiny-q4_k_m.gguf with tests/py/tiny_kquant_llama.py --no-rope-freqs (transformers'
GGUF loader does not apply llama.cpp's rope_freqs.weight), loads it with
`AutoModelForCausalLM.from_pretrained(OUT_DIR, gguf_file=...)` in float32 (transformers dequantizes
with the gguf package and un-permutes Q/K itself), and reports the largest logit difference from the
numpy reference and whether the 8 greedy tokens agree. With TRTFORGE_BIN it also runs
`trtforge generate --prompt-ids ... --greedy --print-ids` and compares those tokens. Writes
OUT_DIR/hf_gguf_golden.json. Needs: torch, transformers==5.23.0, gguf==0.19.0, sentencepiece, numpy.
"""
import json
import os
import subprocess
import sys

import numpy as np
import torch
from transformers import AutoModelForCausalLM


def main() -> None:
    out = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run([sys.executable, os.path.join(here, "tiny_kquant_llama.py"), out, "--no-rope-freqs"], check=True)
    exp = json.load(open(os.path.join(out, "expected.json")))
    model = AutoModelForCausalLM.from_pretrained(out, gguf_file="tiny-q4_k_m.gguf", dtype=torch.float32)
    model.eval()
    ids = torch.tensor([exp["prompt_ids"]])
    with torch.no_grad():
        logits = model(ids).logits[0].double().numpy()
        gen = model.generate(ids, max_new_tokens=len(exp["greedy_ids"]), do_sample=False, eos_token_id=None)
    hf_greedy = gen[0, ids.shape[1]:].tolist()
    report = {
        "max_abs_logit_diff_vs_numpy": float(np.abs(logits - np.array(exp["logits"])).max()),
        "hf_greedy": hf_greedy,
        "numpy_greedy": exp["greedy_ids"],
        "greedy_equal": hf_greedy == exp["greedy_ids"],
    }
    if len(sys.argv) > 2:
        cmd = [sys.argv[2], "generate", "--model", os.path.join(out, "tiny-q4_k_m.gguf"), "--greedy",
               "--prompt-ids", ",".join(map(str, exp["prompt_ids"])),
               "--max-new-tokens", str(len(exp["greedy_ids"])), "--print-ids"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        report["trtforge_stdout"] = r.stdout.strip()
        report["trtforge_rc"] = r.returncode
    json.dump(report, open(os.path.join(out, "hf_gguf_golden.json"), "w"), indent=1)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
