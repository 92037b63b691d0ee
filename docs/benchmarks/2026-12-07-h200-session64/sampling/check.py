"""vLLM's repetition_penalty, min_tokens, min_p and guided_choice on `serve --backend cuda` beside `--backend cpu`
(session 64):
greedy completions with repetition_penalty 1.3 / 0.8 (with a presence penalty) must equal the CPU backend's texts;
with the end token pushed up (logit_bias on `</s>`) a min_tokens choice must run at least that many tokens (cuda =
cpu); min_p's sampled draws (temperature 1.5, min_p 0.3) must each be within its bound by the returned
log-probabilities (the model's own); guided_choice answers (greedy and sampled) must each be one of the strings, and
greedy cuda = cpu (call C; CHOICE_ONLY=1 runs only that part).
Usage: check.py CUDA_URL CPU_URL"""
import os
import json
import math
import sys
import urllib.request

cuda, cpu = sys.argv[1], sys.argv[2]


def post(base, body):
    req = urllib.request.Request(base + "/v1/completions", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.loads(r.read())


prompts = ["Once upon a time", "The capital of France is", "def fibonacci(n):", "List three colors:"]
CHOICES = ["positive", "negative", "neutral", "mixed feelings"]
inside, greedy_same, n_choice = 0, 0, 0
for p in prompts:
    g = post(cuda, dict(prompt=p, max_tokens=16, temperature=0, guided_choice=CHOICES))["choices"][0]
    gc = post(cpu, dict(prompt=p, max_tokens=16, temperature=0, guided_choice=CHOICES))["choices"][0]
    s = post(cuda, dict(prompt=p, max_tokens=16, temperature=1.0, seed=4, n=4, guided_choice=CHOICES))["choices"]
    for c in [g] + s:
        n_choice += 1
        inside += c["text"] in CHOICES and c["finish_reason"] == "stop"
    greedy_same += g["text"] == gc["text"]
    print(f"  guided_choice {p!r}: greedy cuda {g['text']!r} cpu {gc['text']!r}; sampled {[c['text'] for c in s]}")
print(f"guided_choice: {inside} of {n_choice} answers one of the strings; greedy cuda = cpu {greedy_same} of {len(prompts)}")
if os.environ.get("CHOICE_ONLY") == "1":
    sys.exit(0)
same, total = 0, 0
for p in prompts:
    for kw in [dict(repetition_penalty=1.3), dict(repetition_penalty=0.8, presence_penalty=0.5)]:
        body = dict(prompt=p, max_tokens=24, temperature=0, **kw)
        a, b = post(cuda, body)["choices"][0]["text"], post(cpu, body)["choices"][0]["text"]
        total += 1
        same += a == b
        if a != b:
            k = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
            print(f"  cuda != cpu {p!r} {kw} from char {k}: cuda {a!r} cpu {b!r}")
print(f"repetition_penalty greedy: cuda = cpu {same} of {total}")
ok = 0
for p in prompts:
    body = dict(prompt=p, max_tokens=32, temperature=0, logit_bias={"2": 12.0})
    nat = post(cuda, body)
    mt = post(cuda, dict(body, min_tokens=12))
    mc = post(cpu, dict(body, min_tokens=12))
    n0, n1 = nat["usage"]["completion_tokens"], mt["usage"]["completion_tokens"]
    good = n1 >= 12 and mt["choices"][0]["text"] == mc["choices"][0]["text"]
    ok += good
    print(f"  min_tokens 12 {p!r}: without {n0} tokens ({nat['choices'][0]['finish_reason']}), with {n1} "
          f"({mt['choices'][0]['finish_reason']}); cuda = cpu {mt['choices'][0]['text'] == mc['choices'][0]['text']}")
print(f"min_tokens: {ok} of {len(prompts)} ran at least 12 tokens with the CPU's text")
T, MP = 1.5, 0.3
drawn, bad = 0, 0
for p in prompts:
    r = post(cuda, dict(prompt=p, max_tokens=16, temperature=T, seed=9, n=4, logprobs=5, min_p=MP))
    for c in r["choices"]:
        for lp, top in zip(c["logprobs"]["token_logprobs"], c["logprobs"]["top_logprobs"]):
            drawn += 1
            bad += lp - max(top.values()) < T * math.log(MP) - 1e-3
print(f"min_p {MP} at temperature {T}: {drawn} draws on cuda, {bad} outside the bound")
