"""Function calling on `serve --backend cuda` beside `--backend cpu` (session 64): chat completions with `tools`.
Named function and "required" (greedy, and sampled n = 4 with parallel calls off): every choice that stops must be
calls whose arguments validate against their function's parameters (`jsonschema` where installed, and a direct
check of keys and types in any case); a streamed named call's deltas must join to the unstreamed call; greedy
arguments on cuda must equal the CPU backend's. With AUTO_URL (a server with --tool-call-parser llama3_json), a reply
shaped as Llama 3.1's call ({"name", "parameters"}, by a json_schema response_format) must come back as a tool call.
Usage: check.py CUDA_URL CPU_URL [AUTO_URL]"""
import json
import sys
import urllib.request

cuda, cpu = sys.argv[1], sys.argv[2]
auto = sys.argv[3] if len(sys.argv) > 3 else None
WEATHER = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12},
                                            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                                            "days": {"type": "integer", "minimum": 1, "maximum": 7}},
           "required": ["city", "unit"], "additionalProperties": False}
CLOCK = {"type": "object", "properties": {"tz": {"type": "string", "maxLength": 8}}, "required": ["tz"],
         "additionalProperties": False}
PARAMS = {"get_weather": WEATHER, "get_time": CLOCK}
TOOLS = [{"type": "function", "function": {"name": n, "parameters": p}} for n, p in PARAMS.items()]
MSGS = [{"role": "user", "content": "What is the weather in Oslo?"}]
# Random-weight preset: push the structural tokens a little so that calls close ('"', '}', ':', ',' in Llama's vocabulary).
BIAS = {"29908": 4.0, "29913": 2.0, "29901": 2.0, "29892": 1.0}
try:
    import jsonschema
except ImportError:
    jsonschema = None


def args_ok(name, text):
    a = json.loads(text)
    s = PARAMS[name]
    assert isinstance(a, dict) and set(s["required"]) <= set(a) <= set(s["properties"]), a
    for k, v in a.items():
        t = s["properties"][k]
        if "enum" in t:
            assert v in t["enum"], (k, v)
        elif t["type"] == "string":
            assert isinstance(v, str) and len(v) <= t["maxLength"], (k, v)
        else:
            assert isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 7, (k, v)
    if jsonschema:
        jsonschema.validate(a, s)


def post(base, body, stream=False):
    req = urllib.request.Request(base + "/v1/chat/completions", data=json.dumps(dict(body, stream=stream)).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        if not stream:
            return json.loads(r.read())
        return [json.loads(line[6:]) for line in r.read().decode().splitlines()
                if line.startswith("data: ") and line != "data: [DONE]"]


named = {"type": "function", "function": {"name": "get_weather"}}
greedy = {}
for label, choice in [("named", named), ("required", "required")]:
    total, stopped, bad = 0, 0, []
    for kw in [dict(temperature=0), dict(temperature=0, logit_bias=BIAS),
               dict(temperature=1.0, seed=7, n=4, logit_bias=BIAS, parallel_tool_calls=False)]:
        body = dict(messages=MSGS, tools=TOOLS, tool_choice=choice, max_tokens=96, **kw)
        r = post(cuda, body)
        for c in r["choices"]:
            total += 1
            if c["finish_reason"] not in ("stop", "tool_calls"):
                continue
            stopped += 1
            try:
                assert c["message"]["content"] is None, c
                calls = c["message"]["tool_calls"]
                assert len(calls) >= 1 and (len(calls) == 1 or kw.get("parallel_tool_calls", True)), calls
                for t in calls:
                    assert t["type"] == "function" and t["id"].startswith("call_"), t
                    args_ok(t["function"]["name"], t["function"]["arguments"])
                assert c["finish_reason"] == ("stop" if label == "named" else "tool_calls"), c
            except Exception as e:  # noqa: BLE001
                bad.append((label, kw, c["message"], repr(e)))
        if kw["temperature"] == 0:
            greedy[(label, "logit_bias" in kw)] = (body, r["choices"][0]["message"])
    print(f"cuda {label}: {total} choices, {stopped} stopped, {len(bad)} stopped choices not valid")
    for b in bad:
        print("  BAD", b)
# streamed named call joins to the unstreamed one
body, msg = greedy[("named", True)]
acc = {}
for ch in post(cuda, body, stream=True):
    for t in (ch["choices"][0]["delta"].get("tool_calls") or []) if ch["choices"] else []:
        a = acc.setdefault(t["index"], {"name": t["function"].get("name"), "arguments": ""})
        a["arguments"] += t["function"].get("arguments", "")
want = msg["tool_calls"][0]["function"] if msg.get("tool_calls") else None
print(f"streamed named call = unstreamed: {want is not None and acc.get(0) == want}")
same = 0
for (label, b), (body, msg) in greedy.items():
    c = post(cpu, body)["choices"][0]["message"]
    strip = lambda m: [(t["function"]["name"], t["function"]["arguments"]) for t in m.get("tool_calls") or []]
    same += strip(c) == strip(msg)
    print(f"  greedy {label} bias={b}: cuda {strip(msg)} cpu {strip(c) if strip(c) != strip(msg) else '(same)'}")
print(f"cpu vs cuda greedy calls: {same} of {len(greedy)} equal")
if auto:
    alts = [{"type": "object", "properties": {"name": {"const": n}, "parameters": p},
             "required": ["name", "parameters"], "additionalProperties": False} for n, p in PARAMS.items()]
    rf = {"type": "json_schema", "json_schema": {"name": "call", "schema": {"anyOf": alts}}}
    r = post(auto, dict(messages=MSGS, tools=TOOLS, max_tokens=96, temperature=1.0, seed=3, n=4, logit_bias=BIAS,
                        response_format=rf))
    ok = 0
    for c in r["choices"]:
        if c["finish_reason"] == "tool_calls":
            t = c["message"]["tool_calls"][0]["function"]
            args_ok(t["name"], t["arguments"])
            ok += c["message"]["content"] is None
    print(f"auto (llama3_json): {ok} of {len(r['choices'])} choices came back as valid tool calls; "
          f"finish {[c['finish_reason'] for c in r['choices']]}")
