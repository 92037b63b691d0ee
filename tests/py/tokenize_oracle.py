"""`trtforge serve`'s /tokenize and /detokenize against HF transformers' tokenizer of the same GGUF (driven by
tests/serve.rs).

Usage: tokenize_oracle.py BASE_URL GGUF MODEL_NAME
transformers converts the GGUF's embedded tokenizer itself (`from_pretrained(dir, gguf_file=...)`) and renders
chat messages with the GGUF's template (`apply_chat_template`). Prints "OK".
transformers' GGUF metadata reader imports torch, which the tests do not install: the one function it needs
(`read_gguf_metadata`: the file's key/value pairs) is given here from llama.cpp's gguf-py instead; the vocabulary
conversion and everything after it are transformers' own.
"""
import json
import os
import sys
import types
import urllib.error
import urllib.request

import gguf


def read_gguf_metadata(path, string_arrays=()):
    r = gguf.GGUFReader(path)
    meta = {k: f.contents() for k, f in r.fields.items() if not k.startswith("GGUF.")}
    return meta, tuple(t.name for t in r.tensors)


reader = types.ModuleType("transformers.integrations.gguf.reader")
reader.read_gguf_metadata = read_gguf_metadata
sys.modules[reader.__name__] = reader
from transformers import PreTrainedTokenizerFast  # noqa: E402

base, path, model = sys.argv[1], sys.argv[2], sys.argv[3]
tok = PreTrainedTokenizerFast.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))


def post(path, body):
    req = urllib.request.Request(base + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


texts = [
    "The capital of France is",
    "  two leading spaces,\ttabs\tand\r\nCRLF lines\n\n\nand blank ones   ",
    "Ünïcödé: naïve café, 日本語のテキスト, 한국어, emoji 👩‍👩‍👧 🎉, RTL שלום עולם, combining e\u0301",
    "digits 1234567890 3.14159 1,000,000 and symbols <>&%$#@!~`^*()[]{}|\\/",
    "a literal <|im_start|>user\nhello<|im_end|> inside the text",
    "x" * 300 + " supercalifragilisticexpialidocious" * 3,
]
for t in texts:
    st, r = post("/tokenize", {"model": model, "prompt": t, "return_token_strs": True})
    want = tok(t)["input_ids"]
    assert st == 200, (st, r)
    assert r["tokens"] == want, (t, r["tokens"], want)
    assert r["count"] == len(want) and r["max_model_len"] > 0, r
    assert r["token_strs"] == tok.convert_ids_to_tokens(want), (r["token_strs"], tok.convert_ids_to_tokens(want))
    st, d = post("/detokenize", {"model": model, "tokens": want})
    assert st == 200 and d["prompt"] == tok.decode(want), (t, d, tok.decode(want))

convs = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name two rivers.\nOne per line."},
        {"role": "assistant", "content": "Seine\nLoire"},
        {"role": "user", "content": "Two more, ünïcödé 🎉"},
    ],
]
for msgs in convs:
    for agp in (True, False):
        st, r = post("/tokenize", {"messages": msgs, "add_generation_prompt": agp})
        want = tok.apply_chat_template(msgs, add_generation_prompt=agp, tokenize=True)
        if isinstance(want, dict) or hasattr(want, "keys"):
            want = want["input_ids"]
        assert st == 200 and r["tokens"] == list(want), (msgs, agp, r, want)
        assert r["token_strs"] is None, r

# Bad inputs: clear 4xx errors in OpenAI's shape.
for path, body, code in [
    ("/tokenize", {}, 400),
    ("/tokenize", {"prompt": "a", "messages": [{"role": "user", "content": "b"}]}, 400),
    ("/tokenize", {"prompt": 7}, 400),
    ("/tokenize", {"prompt": "a", "model": "not-this-one"}, 404),
    ("/tokenize", {"messages": [{"role": "wizard", "content": "b"}]}, 400),
    ("/tokenize", {"prompt": "word " * 20000}, 400),
    ("/detokenize", {"tokens": [1, len(tok) + 100]}, 400),
    ("/detokenize", {"tokens": "1 2 3"}, 400),
    ("/detokenize", {"tokens": [-1]}, 400),
]:
    st, r = post(path, body)
    assert st == code and r["error"]["message"], (path, body, st, r)
print("OK")
