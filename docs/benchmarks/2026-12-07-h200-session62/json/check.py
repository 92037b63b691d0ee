"""JSON mode on `serve --backend cuda` (session 62): greedy and sampled choices of /v1/completions with
response_format json_object; each choice that stops must parse as a JSON object (python's json module), each that
runs to its length must not contain the end token. Then 16 concurrent requests, 64 tokens each: plain (sampled on the
device), with a logit_bias (the host's sampling path) and in JSON mode, output tokens a second of each set.
Usage: check.py CUDA_URL [CPU_URL]  (CPU_URL: the same model on --backend cpu; greedy JSON texts compared)."""
import json
import sys
import threading
import time
import urllib.request

cuda = sys.argv[1]
cpu = sys.argv[2] if len(sys.argv) > 2 else None
RF = {"type": "json_object"}


def post(base, body):
    req = urllib.request.Request(base + "/v1/completions", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.loads(r.read())


prompts = ["A JSON object describing a cat:", "{\"name\":", "Output the result as JSON.", "Config file:"]
# Random-weight preset: push the structural tokens a little so that some objects close.
bias = {"29908": 4.0, "29913": 2.0, "29901": 2.0, "29892": 1.0}  # '"', '}', ':', ',' in Llama's SentencePiece vocabulary
stopped, total, bad = 0, 0, []
greedy = {}
for p in prompts:
    for kw in [dict(temperature=0), dict(temperature=0, logit_bias=bias), dict(temperature=1.0, seed=7, n=4, logit_bias=bias)]:
        r = post(cuda, dict(prompt=p, max_tokens=48, response_format=RF, **kw))
        for c in r["choices"]:
            total += 1
            if c["finish_reason"] == "stop":
                stopped += 1
                try:
                    assert isinstance(json.loads(c["text"]), dict)
                except Exception as e:  # noqa: BLE001
                    bad.append((p, kw, c["text"], repr(e)))
            if kw.get("temperature") == 0:
                greedy[(p, "logit_bias" in kw)] = c["text"]
print(f"cuda json mode: {total} choices, {stopped} stopped, {len(bad)} stopped choices not a JSON object")
for b in bad:
    print("  BAD", b)
for (p, b), t in list(greedy.items())[:4]:
    print(f"  greedy {p!r} bias={b}: {t!r}")
if cpu:
    same = 0
    for (p, b), t in greedy.items():
        kw = dict(logit_bias=bias) if b else {}
        c = post(cpu, dict(prompt=p, max_tokens=48, temperature=0, response_format=RF, **kw))["choices"][0]["text"]
        same += c == t
        if c != t:
            k = next((i for i in range(min(len(c), len(t))) if c[i] != t[i]), min(len(c), len(t)))
            print(f"  cpu != cuda for {p!r} bias={b} from char {k}: cpu {c!r}")
    print(f"cpu vs cuda greedy json texts: {same} of {len(greedy)} equal")


def load(name, extra):
    out, t0 = [], time.time()

    def one(i):
        r = post(cuda, dict(prompt=prompts[i % len(prompts)] + " " * (i % 3), max_tokens=64, temperature=0.8,
                            seed=i, **extra))
        out.append(r["usage"]["completion_tokens"])

    th = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    [x.start() for x in th]
    [x.join() for x in th]
    dt = time.time() - t0
    print(f"load {name}: 16 requests, {sum(out)} tokens in {dt:.2f} s = {sum(out) / dt:.0f} output tok/s")


for rep in range(2):
    load("plain", dict(ignore_eos=True))
    load("logit_bias (host sampling)", dict(ignore_eos=True, logit_bias={"13": 0.5}))
    load("json_object", dict(response_format=RF, logit_bias=bias))
