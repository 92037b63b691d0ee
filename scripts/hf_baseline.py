#!/usr/bin/env python3
"""HF transformers baseline for `trtforge bench --baseline FILE`.

Reads trtforge engine directories (their trtforge.json manifests), builds the same model in HF
transformers and measures the same shapes, writing the results.json schema of docs/bench-schema.md
with backends `hf-eager` and `hf-compile` (torch.compile, static KV cache).

Weights: speed does not depend on weight values, so by default the model is built from the
manifest's config with seeded random weights (`--weights random`); `--weights gguf` loads the
engine's GGUF source (transformers dequantizes it) for a like-for-like quality baseline.

    python3 scripts/hf_baseline.py --engine-dirs engines/smollm2_fp16 --batch-sizes 1 8 \
        --input-lens 128 --output-len 128 --runs 3 --out baseline.json
"""
import argparse
import datetime
import json
import os
import platform
import socket
import statistics
import sys
import time


def summary(xs):
    if not xs:
        return None
    v = sorted(xs)
    return {"median": statistics.median(v), "min": v[0], "max": v[-1], "n": len(v)}


def latency(xs):
    if not xs:
        return None
    v = sorted(xs)
    k = (len(v) - 1) * 0.99
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return {"mean": sum(v) / len(v), "p50": statistics.median(v), "p99": v[lo] + (v[hi] - v[lo]) * (k - lo)}


def row(engine, backend, b, l, n, status="ok", reason=None, **kw):
    r = {"engine": engine, "backend": backend, "batch": b, "input_len": l, "output_len": n,
         "status": status, "reason": reason, "ttft_ms": None, "itl_ms": None, "decode_tok_s": None,
         "prefill_tok_s": None, "e2e_tok_s": None, "memory": None, "host_peak_rss_bytes": None}
    r.update(kw)
    return r


def build_model(man, weights, dtype, device, seed):
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    c = man["model_config"]
    if weights == "gguf":
        src = man["source"]["spec"]
        return AutoModelForCausalLM.from_pretrained(os.path.dirname(src), gguf_file=os.path.basename(src), dtype=dtype).to(device)
    rs = c.get("rope_scaling")
    cfg = LlamaConfig(
        vocab_size=c["vocab_size"], hidden_size=c["hidden_size"], intermediate_size=c["intermediate_size"],
        num_hidden_layers=c["num_hidden_layers"], num_attention_heads=c["num_attention_heads"],
        num_key_value_heads=c["num_key_value_heads"], head_dim=c["head_dim"], rope_theta=c["rope_theta"],
        rms_norm_eps=c["rms_norm_eps"], tie_word_embeddings=c["tie_word_embeddings"],
        max_position_embeddings=c["max_position_embeddings"],
        rope_scaling=None if rs is None else dict(rope_type="llama3", **rs),
    )
    torch.manual_seed(seed)
    with torch.device(device):
        return LlamaForCausalLM(cfg).to(dtype)


def measure(model, b, l, n, runs, warmup, seed, device):
    """TTFT = generate(max_new_tokens=1); total = generate(max_new_tokens=n); decode = the rest."""
    import torch

    g = torch.Generator().manual_seed(seed)
    vocab = model.config.vocab_size
    ids = torch.randint(16, vocab, (b, l), generator=g).to(device)
    mask = torch.ones_like(ids)

    def gen(k):
        torch.cuda.synchronize()
        t = time.perf_counter()
        model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=k, min_new_tokens=k, do_sample=False,
                       pad_token_id=0)
        torch.cuda.synchronize()
        return time.perf_counter() - t

    ttft, dec, pre, e2e, itl = [], [], [], [], []
    torch.cuda.reset_peak_memory_stats()
    for i in range(warmup + runs):
        t1 = gen(1)
        tn = gen(n)
        if i < warmup:
            continue
        ttft.append(t1 * 1e3)
        pre.append(b * l / t1)
        d = max(tn - t1, 1e-9)
        dec.append(b * (n - 1) / d)
        e2e.append(b * n / tn)
        itl.append(d / (n - 1) * 1e3)
    mem = {"weights_bytes": sum(p.numel() * p.element_size() for p in model.parameters()), "kv_cache_bytes": 0,
           "device_peak_bytes": torch.cuda.max_memory_allocated(), "device_used_delta_bytes": None}
    return dict(ttft_ms=summary(ttft), itl_ms=latency(itl), decode_tok_s=summary(dec), prefill_tok_s=summary(pre),
                e2e_tok_s=summary(e2e), memory=mem)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine-dirs", nargs="+", required=True)
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[1])
    ap.add_argument("--input-lens", nargs="+", type=int, default=[128])
    ap.add_argument("--output-len", type=int, default=32)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--modes", nargs="+", default=["eager", "compile"], choices=["eager", "compile"])
    ap.add_argument("--weights", default="random", choices=["random", "gguf"])
    ap.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    import torch
    import transformers

    if not torch.cuda.is_available():
        sys.exit("hf_baseline.py: no CUDA device; the HF baseline is measured on the GPU")
    dtype = getattr(torch, a.dtype)
    dev = "cuda"
    engines, speed = [], []
    for d in a.engine_dirs:
        man = json.load(open(os.path.join(d, "trtforge.json")))
        name = man["name"] + "-hf"
        engines.append({"dir": d, "name": name, "precision": a.dtype.replace("float", "fp"),
                        "parameters": 0, "size_bytes": 0})
        for mode in a.modes:
            backend = f"hf-{mode}"
            try:
                model = build_model(man, a.weights, dtype, dev, a.seed).eval()
                engines[-1]["parameters"] = sum(p.numel() for p in model.parameters())
                if mode == "compile":
                    model.generation_config.cache_implementation = "static"
                    model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True)
            except Exception as e:  # noqa: BLE001 - recorded in the report
                for b in a.batch_sizes:
                    for l in a.input_lens:
                        speed.append(row(name, backend, b, l, a.output_len, "error", f"{type(e).__name__}: {e}"))
                continue
            for b in a.batch_sizes:
                for l in a.input_lens:
                    try:
                        with torch.inference_mode():
                            speed.append(row(name, backend, b, l, a.output_len,
                                             **measure(model, b, l, a.output_len, a.runs, a.warmup, a.seed, dev)))
                    except torch.cuda.OutOfMemoryError as e:
                        speed.append(row(name, backend, b, l, a.output_len, "oom", str(e).splitlines()[0]))
                        torch.cuda.empty_cache()
                    except Exception as e:  # noqa: BLE001
                        speed.append(row(name, backend, b, l, a.output_len, "error", f"{type(e).__name__}: {e}"))
                    print(json.dumps(speed[-1]), file=sys.stderr)
            del model
            torch.cuda.empty_cache()
    props = torch.cuda.get_device_properties(0)
    res = {
        "schema_version": 1, "trtforge_version": "hf_baseline.py", "git_commit": "unknown",
        "command": " ".join(sys.argv), "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"hostname": socket.gethostname(), "os": platform.platform(), "cpu": platform.processor(),
                    "cores": os.cpu_count(), "memory_bytes": 0, "gpu": f"{props.name} (sm_{props.major}{props.minor})",
                    "driver": None, "cuda": torch.version.cuda, "tensorrt": None, "onnxruntime": None},
        "settings": {"engine_dirs": a.engine_dirs, "backends": [], "batch_sizes": a.batch_sizes,
                     "input_lens": a.input_lens, "output_len": a.output_len, "runs": a.runs, "warmup": a.warmup,
                     "eval_text": None, "eval_ctx": 0, "eval_windows": 0, "quality_tokens": 0, "memory_sweep": False,
                     "sweep_batch_sizes": [], "sweep_seq_lens": [], "seed": a.seed,
                     "hf": {"torch": torch.__version__, "transformers": transformers.__version__, "weights": a.weights,
                            "dtype": a.dtype, "modes": a.modes}},
        "engines": engines, "speed": speed, "quality": [], "memory_sweep": [], "interrupted": False,
    }
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(res, f, indent=1)
    os.replace(tmp, a.out)
    print(a.out)


if __name__ == "__main__":
    main()
