"""JSON mode and structured outputs on `serve --backend cuda` (session 62's check, with session 63's schemas): greedy
and sampled choices of /v1/completions with response_format json_object, then json_schema (and vLLM's guided_json);
each choice that stops must parse as a JSON object (python's json module) / validate against its schema (the
`jsonschema` package where installed, and a direct check of this schema's keys and types in any case). Then 16
concurrent requests, 64 tokens each: plain (sampled on the device), with a logit_bias (the host's sampling path), in
JSON mode and with the schema, output tokens a second of each set.
Usage: check.py CUDA_URL [CPU_URL]  (CPU_URL: the same model on --backend cpu; greedy JSON texts compared)."""
import json
import sys
import threading
import time
import urllib.request

cuda = sys.argv[1]
cpu = sys.argv[2] if len(sys.argv) > 2 else None
RF = {"type": "json_object"}
SCHEMA = {"type": "object", "additionalProperties": False, "required": ["name", "n", "kind", "tags"],
          "properties": {"name": {"type": "string", "maxLength": 8}, "n": {"type": "integer"},
                         "kind": {"enum": ["a", "b", 3]},
                         "tags": {"type": "array", "items": {"type": "boolean"}, "maxItems": 3}}}
RS = {"type": "json_schema", "json_schema": {"name": "thing", "schema": SCHEMA, "strict": True}}
try:
    import jsonschema
except ImportError:
    jsonschema = None


def schema_ok(text):
    o = json.loads(text)
    assert isinstance(o, dict) and sorted(o) == ["kind", "n", "name", "tags"], o
    assert isinstance(o["name"], str) and len(o["name"]) <= 8, o
    assert isinstance(o["n"], int) and not isinstance(o["n"], bool), o
    assert o["kind"] in ("a", "b", 3) and not isinstance(o["kind"], bool), o
    assert isinstance(o["tags"], list) and len(o["tags"]) <= 3 and all(isinstance(x, bool) for x in o["tags"]), o
    if jsonschema:
        jsonschema.validate(o, SCHEMA)


def post(base, body):
    req = urllib.request.Request(base + "/v1/completions", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.loads(r.read())


prompts = ["A JSON object describing a cat:", "{\"name\":", "Output the result as JSON.", "Config file:"]
# Random-weight preset: push the structural tokens a little so that some objects close.
bias = {"29908": 4.0, "29913": 2.0, "29901": 2.0, "29892": 1.0}  # '"', '}', ':', ',' in Llama's SentencePiece vocabulary
greedy = {}
for fmt, extra, ok in [("json_object", dict(response_format=RF), lambda t: isinstance(json.loads(t), dict)),
                       ("json_schema", dict(response_format=RS), schema_ok),
                       ("guided_json", dict(guided_json=SCHEMA), schema_ok)]:
    stopped, total, bad = 0, 0, []
    for p in prompts:
        for kw in [dict(temperature=0), dict(temperature=0, logit_bias=bias),
                   dict(temperature=1.0, seed=7, n=4, logit_bias=bias)]:
            r = post(cuda, dict(prompt=p, max_tokens=96 if fmt != "json_object" else 48, **extra, **kw))
            for c in r["choices"]:
                total += 1
                if c["finish_reason"] == "stop":
                    stopped += 1
                    try:
                        assert ok(c["text"]) is not False
                    except Exception as e:  # noqa: BLE001
                        bad.append((p, kw, c["text"], repr(e)))
                if kw.get("temperature") == 0:
                    greedy[(fmt, p, "logit_bias" in kw)] = c["text"]
    print(f"cuda {fmt}: {total} choices, {stopped} stopped, {len(bad)} stopped choices not valid")
    for b in bad:
        print("  BAD", b)
for (f, p, b), t in list(greedy.items())[::4]:
    print(f"  greedy {f} {p!r} bias={b}: {t!r}")
if cpu:
    same = 0
    # The first two prompts without the bias (the CPU runs the 1.1B preset slowly).
    for (f, p, b), t in [(k, t) for k, t in greedy.items() if k[1] in prompts[:2] and not k[2]]:
        kw = dict(logit_bias=bias) if b else {}
        kw.update(response_format=RF) if f == "json_object" else kw.update(response_format=RS) if f == "json_schema" \
            else kw.update(guided_json=SCHEMA)
        c = post(cpu, dict(prompt=p, max_tokens=96 if f != "json_object" else 48, temperature=0, **kw))["choices"][0]["text"]
        same += c == t
        if c != t:
            k = next((i for i in range(min(len(c), len(t))) if c[i] != t[i]), min(len(c), len(t)))
            print(f"  cpu != cuda for {f} {p!r} bias={b} from char {k}: cpu {c!r}")
    print(f"cpu vs cuda greedy json texts: {same} of 6 equal")


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
    load("json_schema", dict(response_format=RS, logit_bias=bias))
