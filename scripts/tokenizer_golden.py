#!/usr/bin/env python3
"""Writes the golden token ids the Rust tokenizer tests compare against, from implementations
independent of trtforge.

  tests/fixtures/smollm2_tokenizer_golden.json
      SmolLM2-135M-Instruct's GGUF vocabulary, tokenized by llama.cpp (llama-cpp-python, vocab only):
      short strings, character ranges of two Shakespeare plays (ids only; the tests read the text
      from models/), and the ChatML prompt that HF transformers renders from the GGUF's own
      `tokenizer.chat_template` with Jinja. Every case is cross-checked against transformers' GGUF
      tokenizer converter; the cases where that converter disagrees are listed (it has no "smollm"
      pre-tokenizer entry, so it does not split digits the way the model's tokenizer.json does).
  tests/fixtures/tiny_tokenizer.json + tiny_tokenizer_golden.json
      a byte-level BPE (vocab 300) trained here with the Python `tokenizers` library, with its
      encode/decode results.

Needs: pip install tokenizers gguf transformers jinja2 llama-cpp-python   (no torch)
and the models (bash scripts/fetch_models.sh). Run from the repository root:

  python3 scripts/tokenizer_golden.py
"""
import argparse
import hashlib
import importlib.metadata as md
import json
import os
import platform
import re
import sys

GGUF_DEFAULT = "models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf"

SHORT_STRINGS = [
    "Hello, world!",
    "The capital of France is",
    "12345",
    "Call 911  or   42, not 3.14159 (x2)",
    "a  1",
    "café — naïve 日本",
    "  leading spaces",
    "tabs\tand\ttrailing   ",
    "line one\nline two\n\n\nthree\r\n",
    "<|im_start|>user\nhi<|im_end|>",
    "<|endoftext|>text between<|im_end|> specials",
    "don't we'll I'm they've SHE'S",
    "emoji 🦀🚀 and ∑ math ≠",
    "",
]

# (file, first char, end char): the first ~4000 characters and a window from the middle.
PLAY_RANGES = [
    ("hamlet_gut.txt", 0, 4000),
    ("hamlet_gut.txt", 60000, 64000),
    ("lear_gut.txt", 0, 4000),
    ("lear_gut.txt", 80000, 84000),
]

CHAT_CASES = [
    {"messages": [{"role": "user", "content": "What is the capital of France?"}], "add_generation_prompt": True},
    {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Again"},
        ],
        "add_generation_prompt": True,
    },
    {"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": False},
]


def versions(names):
    out = {}
    for n in names:
        try:
            out[n] = md.version(n)
        except md.PackageNotFoundError:
            out[n] = None
    return out


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_gguf_tokenizer(path):
    """The tokenizer.* metadata, read with llama.cpp's own Python GGUF reader."""
    from gguf import GGUFReader

    r = GGUFReader(path)
    f = r.fields
    get = lambda k: f[k].contents() if k in f else None  # noqa: E731
    return {
        "architecture": get("general.architecture"),
        "tokenizer_type": get("tokenizer.ggml.model"),
        "pre_tokenizer_type": get("tokenizer.ggml.pre"),
        "tokens": get("tokenizer.ggml.tokens"),
        "token_type": get("tokenizer.ggml.token_type"),
        "merges": get("tokenizer.ggml.merges"),
        "bos_token_id": get("tokenizer.ggml.bos_token_id"),
        "eos_token_id": get("tokenizer.ggml.eos_token_id"),
        "unk_token_id": get("tokenizer.ggml.unknown_token_id"),
        "pad_token_id": get("tokenizer.ggml.padding_token_id"),
        "add_bos_token": get("tokenizer.ggml.add_bos_token"),
        "chat_template": get("tokenizer.chat_template"),
    }


def transformers_tokenizer(meta):
    """transformers' GGUF -> fast tokenizer conversion, fed the metadata directly (its own GGUF
    reader needs torch; the conversion does not)."""
    from transformers import PreTrainedTokenizerFast
    from transformers.integrations.gguf.gguf_tokenizer_mapping import convert_gguf_tokenizer

    tdict = {k: meta[k] for k in ("tokenizer_type", "pre_tokenizer_type", "tokens", "token_type", "merges")}
    backend, _ = convert_gguf_tokenizer(meta["architecture"], tdict)
    name = lambda i: meta["tokens"][i] if i is not None else None  # noqa: E731
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=name(meta["bos_token_id"]),
        eos_token=name(meta["eos_token_id"]),
        unk_token=name(meta["unk_token_id"]),
        pad_token=name(meta["pad_token_id"]),
        chat_template=meta["chat_template"],
    )


def smollm2_golden(args):
    from llama_cpp import Llama

    meta = read_gguf_tokenizer(args.gguf)
    llm = Llama(model_path=args.gguf, vocab_only=True, verbose=False)
    hf = transformers_tokenizer(meta)

    def lcpp(text):
        # special=True: special tokens spelled in the text are parsed as such (HF's behaviour).
        return llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    disagreements = []

    def check(label, ids, text):
        other = hf.encode(text, add_special_tokens=False)
        if other != ids:
            disagreements.append(label)

    strings = []
    for s in SHORT_STRINGS:
        ids = lcpp(s)
        check(f"string {s!r}", ids, s)
        strings.append({"text": s, "ids": ids})

    plays = []
    for name, start, end in PLAY_RANGES:
        path = os.path.join(args.texts, name)
        with open(path, encoding="utf-8") as f:
            text = f.read()[start:end]
        ids = lcpp(text)
        check(f"{name}[{start}:{end}]", ids, text)
        plays.append({"file": name, "char_start": start, "char_end": end, "ids": ids})

    chats = []
    for case in CHAT_CASES:
        rendered = hf.apply_chat_template(case["messages"], tokenize=False, add_generation_prompt=case["add_generation_prompt"])
        chats.append(dict(case, rendered=rendered, ids=lcpp(rendered)))

    return {
        "reference": "llama.cpp (llama-cpp-python, Llama(vocab_only=True).tokenize(text, add_bos=False, "
        "special=True)); chat prompts rendered by transformers apply_chat_template from the GGUF's "
        "tokenizer.chat_template",
        "cross_check": "transformers GGUF tokenizer converter (convert_gguf_tokenizer) on the same metadata",
        "cross_check_disagreements": disagreements,
        "gguf": {"path": args.gguf, "bytes": os.path.getsize(args.gguf), "sha256": sha256(args.gguf)},
        "tokenizer": {
            "model": meta["tokenizer_type"],
            "pre": meta["pre_tokenizer_type"],
            "vocab_size": len(meta["tokens"]),
            "merges": len(meta["merges"]),
            "bos": meta["bos_token_id"],
            "eos": meta["eos_token_id"],
            "unk": meta["unk_token_id"],
            "pad": meta["pad_token_id"],
            "add_bos": meta["add_bos_token"],
        },
        "strings": strings,
        "plays": plays,
        "chat": chats,
    }


def tiny_tokenizer(args):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    with open(os.path.join(args.texts, "tempest_gut.txt"), encoding="utf-8") as f:
        corpus = f.read()[:6000]
    specials = ["<|endoftext|>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([corpus], trainer=trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s>:1 $B:1", special_tokens=[("<s>", bos)]),
        ]
    )
    tok.save(args.tiny_out, pretty=True)
    # Golden results from the saved file, as a consumer would load it.
    tok = Tokenizer.from_file(args.tiny_out)
    texts = [
        "Full fathom five thy father lies;",
        "café 12345  spaces\n\nnew <|im_start|>user\nhi<|im_end|></s>",
        "",
    ]
    cases = []
    for t in texts:
        with_sp = tok.encode(t, add_special_tokens=True).ids
        without = tok.encode(t, add_special_tokens=False).ids
        cases.append(
            {
                "text": t,
                "ids_add_special": with_sp,
                "ids": without,
                "decode": tok.decode(with_sp, skip_special_tokens=False),
                "decode_skip_special": tok.decode(with_sp, skip_special_tokens=True),
            }
        )
    return {
        "reference": "Python tokenizers: Tokenizer.from_file(tiny_tokenizer.json).encode/decode",
        "vocab_size": tok.get_vocab_size(with_added_tokens=True),
        "special_ids": {s: tok.token_to_id(s) for s in specials},
        "cases": cases,
    }


def write_json(path, obj):
    """Indented JSON with each id list on one line."""
    text = json.dumps(obj, ensure_ascii=False, indent=1)
    text = re.sub(r"\[([\s\d,-]*)\]", lambda m: "[" + ", ".join(m.group(1).split()).replace(",,", ",") + "]", text)
    assert json.loads(text) == obj
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", default=GGUF_DEFAULT)
    ap.add_argument("--texts", default="models/shakespeare")
    ap.add_argument("--out", default="tests/fixtures/smollm2_tokenizer_golden.json")
    ap.add_argument("--tiny-out", default="tests/fixtures/tiny_tokenizer.json")
    ap.add_argument("--tiny-golden", default="tests/fixtures/tiny_tokenizer_golden.json")
    args = ap.parse_args()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)

    generator = {
        "command": " ".join(["python3", "scripts/tokenizer_golden.py", *sys.argv[1:]]),
        "setup": "pip install tokenizers gguf transformers jinja2 llama-cpp-python (no torch; "
        "llama-cpp-python compiles llama.cpp, CPU only)",
        "python": platform.python_version(),
        "packages": versions(["llama_cpp_python", "tokenizers", "transformers", "gguf", "jinja2"]),
    }
    golden = dict(generator=generator, **smollm2_golden(args))
    write_json(args.out, golden)
    tiny = dict(generator=generator, **tiny_tokenizer(args))
    write_json(args.tiny_golden, tiny)
    print(f"wrote {args.out}, {args.tiny_out}, {args.tiny_golden}")
    if golden["cross_check_disagreements"]:
        print("transformers' GGUF converter disagrees with llama.cpp on:", *golden["cross_check_disagreements"], sep="\n  ")


if __name__ == "__main__":
    main()
