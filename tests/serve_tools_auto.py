"""tool_choice "auto" against `trtforge serve --tool-call-parser llama3_json` (driven by tests/serve.rs).

Usage: serve_tools_auto.py BASE_URL MODEL
The served model (SmolLM2, a ChatML template that writes no tool calls) is made to answer in Llama 3.1's call
format by a json_schema response_format ({"name": ..., "parameters": {...}}): the official client gets that
answer back as a tool call (content null, finish_reason "tool_calls", arguments valid for the function by
`jsonschema`), streamed or not alike; a plain answer stays text, equal to the same request with tool_choice
"none". Prints "OK" when every check passes.
"""
import json
import sys

import jsonschema
import openai

base, model = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=120)
weather = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 24},
                                            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
           "required": ["city", "unit"], "additionalProperties": False}
clock = {"type": "object", "properties": {"timezone": {"type": "string", "maxLength": 24}}, "required": ["timezone"],
         "additionalProperties": False}
params = {"get_weather": weather, "get_time": clock}
tools = [{"type": "function", "function": {"name": n, "parameters": p}} for n, p in params.items()]
msgs = [{"role": "user", "content": "What's the weather in Oslo?"}]


def call_schema(names):
    alts = [{"type": "object", "properties": {"name": {"const": n}, "parameters": params[n]},
             "required": ["name", "parameters"], "additionalProperties": False} for n in names]
    return {"type": "json_schema", "json_schema": {"name": "call", "schema": alts[0] if len(alts) == 1 else {"anyOf": alts}}}


def streamed(**kw):
    content, calls, finish = "", {}, []
    for chunk in client.chat.completions.create(stream=True, **kw):
        if not chunk.choices:
            continue
        d = chunk.choices[0].delta
        content += d.content or ""
        for t in d.tool_calls or []:
            c = calls.setdefault(t.index, {"name": t.function.name, "arguments": ""})
            c["arguments"] += t.function.arguments or ""
        finish += [chunk.choices[0].finish_reason] if chunk.choices[0].finish_reason else []
    return content, calls, finish


kw = dict(model=model, messages=msgs, tools=tools, max_tokens=200, temperature=0,
          response_format=call_schema(["get_weather"]))
r = client.chat.completions.create(**kw).choices[0]
assert r.finish_reason == "tool_calls" and r.message.content is None and len(r.message.tool_calls) == 1, r
call = r.message.tool_calls[0]
assert call.function.name == "get_weather" and call.id.startswith("call_"), call
jsonschema.validate(json.loads(call.function.arguments), weather)
content, calls, finish = streamed(**kw)
assert content == "" and finish == ["tool_calls"], (content, finish)
assert calls == {0: {"name": "get_weather", "arguments": call.function.arguments}}, (calls, call)

sampled = client.chat.completions.create(**dict(kw, temperature=1.0, seed=11, n=3,
                                                response_format=call_schema(["get_weather", "get_time"]))).choices
names = []
for ch in sampled:
    if ch.finish_reason == "length":
        continue
    assert ch.finish_reason == "tool_calls" and len(ch.message.tool_calls) == 1, ch
    t = ch.message.tool_calls[0]
    jsonschema.validate(json.loads(t.function.arguments), params[t.function.name])
    names.append(t.function.name)
assert len(names) >= 2, sampled

plain = dict(model=model, messages=msgs, tools=tools, max_tokens=24, temperature=0)
p = client.chat.completions.create(**plain).choices[0]
none = client.chat.completions.create(**dict(plain, tool_choice="none")).choices[0]
assert p.message.content and p.message.content == none.message.content and not p.message.tool_calls, (p, none)
assert p.finish_reason == none.finish_reason, (p, none)
content, calls, finish = streamed(**plain)
assert content == p.message.content and not calls and finish == [p.finish_reason], (content, calls, finish)
print(f"auto tools: get_weather({call.function.arguments}), sampled {names}, plain {p.message.content!r}")
print("OK")
