#!/usr/bin/env python3
"""Runs the same model exported in both attention forms with ONNX Runtime and compares logits:
the portable form (past/present Concat + MatMul/Softmax, opset 17) against the tensorrt form
(in-place TensorScatter cache + opset-24 Attention), over a prefill split in two chunks and greedy
decode steps.

    python3 tests/py/check_trt_attention.py PORTABLE_ENGINE_DIR TENSORRT_ENGINE_DIR [--tol 0.02]

Prints a JSON line {"max_abs_diff": ..., "tokens_equal": ...}; exits 1 beyond the tolerance.
Needs onnxruntime >= 1.31 (opset 24) and numpy.
"""
import argparse
import json
import os
import sys

import numpy as np
import onnxruntime as ort


def load(d):
    man = json.load(open(os.path.join(d, "trtforge.json")))
    sess = ort.InferenceSession(os.path.join(d, man["onnx"]["file"]), providers=["CPUExecutionProvider"])
    return man, sess


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("portable")
    ap.add_argument("tensorrt")
    ap.add_argument("--tol", type=float, default=0.02)
    ap.add_argument("--steps", type=int, default=8)
    a = ap.parse_args()
    pm, ps = load(a.portable)
    tm, ts = load(a.tensorrt)
    c = pm["model_config"]
    L, kvh, hd, vocab = c["num_hidden_layers"], c["num_key_value_heads"], c["head_dim"], c["vocab_size"]
    cap = tm["build"]["max_seq_len"]
    dt = np.float16 if pm["onnx"]["dtype"] == "float16" else np.float32
    rng = np.random.default_rng(0)
    prompt = [int(x) for x in rng.integers(3, vocab, 12)]

    # Portable: growing past.
    pk = [np.zeros((1, kvh, 0, hd), dt) for _ in range(2 * L)]

    def run_portable(tokens, past_len):
        nonlocal pk
        n = len(tokens)
        feeds = {
            "input_ids": np.array([tokens], np.int64),
            "attention_mask": np.ones((1, past_len + n), np.int64),
            "position_ids": np.arange(past_len, past_len + n, dtype=np.int64)[None],
        }
        for i in range(L):
            feeds[f"past_key_values.{i}.key"] = pk[2 * i]
            feeds[f"past_key_values.{i}.value"] = pk[2 * i + 1]
        outs = ps.run(None, feeds)
        pk = outs[1:]
        return outs[0][0]

    # TensorRT form: fixed capacity, updated in place.
    tk = [np.zeros((1, kvh, cap, hd), np.float16) for _ in range(2 * L)]

    def run_trt(tokens, past_len):
        nonlocal tk
        n = len(tokens)
        feeds = {
            "input_ids": np.array([tokens], np.int64),
            "position_ids": np.arange(past_len, past_len + n, dtype=np.int64)[None],
            "past_seq_lens": np.array([past_len], np.int64),
        }
        for i in range(L):
            feeds[f"past_key_values.{i}.key"] = tk[2 * i]
            feeds[f"past_key_values.{i}.value"] = tk[2 * i + 1]
        outs = ts.run(None, feeds)
        tk = outs[1:]
        return outs[0][0]

    worst = 0.0
    same = True
    a_log = run_portable(prompt, 0)
    b_log = np.concatenate([run_trt(prompt[:5], 0), run_trt(prompt[5:], 5)])  # chunked prefill
    worst = max(worst, float(np.abs(a_log - b_log).max()))
    nxt = int(a_log[-1].argmax())
    same &= nxt == int(b_log[-1].argmax())
    pos = len(prompt)
    for _ in range(a.steps):
        x = run_portable([nxt], pos)[-1]
        y = run_trt([nxt], pos)[-1]
        worst = max(worst, float(np.abs(x - y).max()))
        same &= int(x.argmax()) == int(y.argmax())
        nxt = int(x.argmax())
        pos += 1
    print(json.dumps({"max_abs_diff": worst, "tokens_equal": bool(same), "tol": a.tol}))
    sys.exit(0 if worst <= a.tol and same else 1)


if __name__ == "__main__":
    main()
