"""guided_regex / structured_outputs.regex on `serve --backend cuda` beside `--backend cpu` (session 65): greedy and
sampled answers must match the pattern whole when they stop (a prefix of a match otherwise: Python's `regex` module,
partial full match), and greedy cuda = cpu.
Usage: check.py CUDA_URL CPU_URL"""
import json
import sys
import urllib.request

import regex

cuda, cpu = sys.argv[1], sys.argv[2]


def post(base, body):
    req = urllib.request.Request(base + "/v1/completions", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.loads(r.read())


prompts = ["Once upon a time", "The capital of France is", "def fibonacci(n):", "List three colors:"]
PATTERNS = [r"[0-9]{3}-[0-9]{4}", r"(red|green|blue)( and (red|green|blue)){0,3}\.", r"[A-Z][a-z]+( [a-z]+){1,4}"]
ok, total, same, n_greedy = 0, 0, 0, 0
for pat in PATTERNS:
    for i, p in enumerate(prompts):
        fmt = dict(guided_regex=pat) if i % 2 == 0 else dict(structured_outputs=dict(regex=pat))
        g = post(cuda, dict(prompt=p, max_tokens=16, temperature=0, **fmt))["choices"][0]
        gc = post(cpu, dict(prompt=p, max_tokens=16, temperature=0, **fmt))["choices"][0]
        s = post(cuda, dict(prompt=p, max_tokens=16, temperature=1.0, seed=7, n=4, **fmt))["choices"]
        for c in [g] + s:
            total += 1
            ok += bool(regex.fullmatch(pat, c["text"], partial=c["finish_reason"] != "stop"))
        n_greedy += 1
        same += g["text"] == gc["text"]
        print(f"  {pat!r} {p!r}: greedy cuda {g['text']!r} ({g['finish_reason']}) cpu {gc['text']!r}; "
              f"sampled {[c['text'] for c in s]}")
print(f"guided_regex: {ok} of {total} answers within the pattern (whole where stopped); greedy cuda = cpu {same} of {n_greedy}")
