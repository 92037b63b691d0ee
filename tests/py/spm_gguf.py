#!/usr/bin/env python3
"""A SentencePiece vocabulary trained here, written into a GGUF the way llama.cpp's converter
writes Llama-2 / TinyLlama vocabularies, with SentencePiece's own ids for varied text: the oracle
for trtforge's GGUF SentencePiece tokenizer (tests/byo.rs).

    python3 tests/py/spm_gguf.py OUT_DIR            # OUT_DIR/spm.gguf (vocab only), cases.json
    python3 tests/py/spm_gguf.py --check-json TOKENIZER_JSON CASES_JSON

The model is BPE with byte fallback, trained with Llama's SentencePiece settings (identity
normalization, a dummy prefix, extra whitespace kept, digits split). `cases.json` holds, per text,
SentencePiece's ids (no bos), its decode of them, and what HF transformers' own GGUF tokenizer
converter gives for the same file (a second opinion, reported but not required to agree).

`--check-json` loads a tokenizer.json that trtforge saved with the `tokenizers` library and checks
it gives SentencePiece's ids (with the bos its template adds) and decodes them back.
"""
import io
import json
import os
import sys

# Texts the tokenizer is checked on: Unicode, digits, runs of spaces, newlines (never in a
# SentencePiece piece: byte fallback), emoji and CJK absent from training (byte fallback).
CASES = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    " leading space",
    "  two leading spaces and trailing  ",
    "runs    of     spaces",
    "line one\nline two\n\nline four",
    "tabs\tand\r\nwindows newlines",
    "digits 1234567890 and 3.14159, 42nd",
    "naïve café, Ünïcödé — “quotes” ‘single’ …",
    "Ελληνικά και русский текст",
    "emoji 🦙🔥 and 😀!",
    "中文字符 日本語",
    "",
    " ",
    "a",
    "mixedCASE camelCase snake_case kebab-case",
]


def corpus():
    """Deterministic training text: English-ish sentences with digits, accents, Greek, Cyrillic."""
    words = (
        "the quick brown fox jumps over lazy dog hello world model token tokenizer byte fallback "
        "llama language piece sentence number value space line text unicode café naïve über "
        "ελληνικά και русский текст mixed case snake kebab camel quotes single double"
    ).split()
    lines = []
    state = 12345
    for i in range(3000):
        n = 4 + i % 9
        ws = []
        for _ in range(n):
            state = (state * 1103515245 + 12345) % (1 << 31)
            w = words[state % len(words)]
            if state % 7 == 0:
                w = w.capitalize()
            if state % 11 == 0:
                w = str(state % 10000)
            ws.append(w)
        sep = "  " if i % 13 == 0 else " "
        lines.append(sep.join(ws) + (". " if i % 3 else ", — “ok” ‘x’ … 3.14"))
    return lines


def train(path_prefix):
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()),
        model_writer=model,
        model_type="bpe",
        vocab_size=420,
        byte_fallback=True,
        character_coverage=1.0,
        normalization_rule_name="identity",
        add_dummy_prefix=True,
        remove_extra_whitespaces=False,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    with open(path_prefix + ".model", "wb") as f:
        f.write(model.getvalue())
    return spm.SentencePieceProcessor(model_proto=model.getvalue())


def add_spm_vocab(w, sp):
    """The tokenizer.* keys llama.cpp's convert_hf_to_gguf writes for a SentencePiece model."""
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i).encode("utf-8"))
        scores.append(sp.get_score(i))
        if sp.is_unknown(i):
            types.append(2)
        elif sp.is_control(i):
            types.append(3)
        elif sp.is_unused(i):
            types.append(5)
        elif sp.is_byte(i):
            types.append(6)
        else:
            types.append(1)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_unk_token_id(sp.unk_id())
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(True)


def hf_ids(gguf_path, texts):
    """transformers' own GGUF -> tokenizer conversion, ids without special tokens."""
    # transformers' own metadata reader imports torch; read the same keys with the gguf package.
    from gguf import GGUFReader
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_TOKENIZER_MAPPING, convert_gguf_tokenizer

    r = GGUFReader(gguf_path)

    def value(key):
        f = r.fields[key]
        if len(f.data) == 1 and key not in ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"):
            v = f.parts[f.data[0]]
            return bytes(v).decode("utf-8") if v.dtype == "uint8" else v.tolist()[0]
        return [bytes(f.parts[i]).decode("utf-8") if f.parts[i].dtype == "uint8" else f.parts[i].tolist()[0] for i in f.data]

    tok_dict = {
        name: value(f"tokenizer.{key}")
        for key, name in GGUF_TOKENIZER_MAPPING["tokenizer"].items()
        if f"tokenizer.{key}" in r.fields
    }
    backend, _ = convert_gguf_tokenizer("llama", tok_dict)
    return [backend.encode(t, add_special_tokens=False).ids for t in texts]


def write(out):
    import gguf

    os.makedirs(out, exist_ok=True)
    sp = train(os.path.join(out, "spm"))
    path = os.path.join(out, "spm.gguf")
    w = gguf.GGUFWriter(path, arch="llama")
    add_spm_vocab(w, sp)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    cases = []
    try:
        hf = hf_ids(path, CASES)
    except Exception as e:  # a second opinion only
        print(f"transformers GGUF converter unavailable: {e!r}", file=sys.stderr)
        hf = [None] * len(CASES)
    for text, h in zip(CASES, hf):
        ids = sp.encode(text)
        cases.append({"text": text, "ids": ids, "decoded": sp.decode(ids), "hf_ids": h})
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump({"bos": sp.bos_id(), "eos": sp.eos_id(), "unk": sp.unk_id(), "cases": cases}, f, ensure_ascii=False)
    disagree = [c["text"] for c in cases if c["hf_ids"] is not None and c["hf_ids"] != c["ids"]]
    print(json.dumps({"pieces": sp.get_piece_size(), "hf_converter_disagrees_on": disagree}, ensure_ascii=False))


def check_json(tokenizer_json, cases_json):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(tokenizer_json)
    spec = json.load(open(cases_json))
    bad = []
    for c in spec["cases"]:
        with_bos = tok.encode(c["text"], add_special_tokens=True).ids
        want = [spec["bos"]] + c["ids"]
        if with_bos != want:
            bad.append({"text": c["text"], "got": with_bos, "want": want})
        back = tok.decode(c["ids"], skip_special_tokens=True)
        if back != c["decoded"]:
            bad.append({"text": c["text"], "decoded": back, "want": c["decoded"]})
    print(json.dumps({"checked": len(spec["cases"]), "bad": bad}, ensure_ascii=False))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    if sys.argv[1] == "--check-json":
        check_json(sys.argv[2], sys.argv[3])
    else:
        write(sys.argv[1])
