"""The official `openai` client against a running `trtforge serve` (driven by tests/serve.rs).

Usage: serve_openai.py BASE_URL MODEL EXPECTED_JSON [GGUF]
EXPECTED_JSON: {"prompt": str, "max_tokens": int, "text": str}  -- the text `trtforge generate --greedy`
printed for that prompt. GGUF: the served model's file; with it the log-probabilities are checked against
tests/py/np_llama.py (float64 numpy). Prints "OK" and exits 0 when every check passes.
"""
import json
import sys

import openai

base, model, expected = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=120)

# /v1/models
ids = [m.id for m in client.models.list().data]
assert ids == [model], ids

# Non-streaming completion: greedy text equals `trtforge generate --greedy`.
r = client.completions.create(model=model, prompt=expected["prompt"], max_tokens=expected["max_tokens"], temperature=0)
assert r.choices[0].text == expected["text"], (r.choices[0].text, expected["text"])
assert r.choices[0].finish_reason in ("length", "stop"), r.choices[0].finish_reason
assert r.usage.completion_tokens <= expected["max_tokens"] and r.usage.prompt_tokens > 0, r.usage
assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens

# Streaming completion: one chunk per token, same text, usage at the end.
chunks = list(
    client.completions.create(
        model=model,
        prompt=expected["prompt"],
        max_tokens=expected["max_tokens"],
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
)
text_chunks = [c for c in chunks if c.choices and c.choices[0].finish_reason is None]
finals = [c for c in chunks if c.choices and c.choices[0].finish_reason is not None]
usage = [c.usage for c in chunks if c.usage is not None]
assert "".join(c.choices[0].text for c in chunks if c.choices) == expected["text"]
assert len(finals) == 1 and finals[0].choices[0].finish_reason == r.choices[0].finish_reason
assert len(usage) == 1 and usage[0].completion_tokens == r.usage.completion_tokens, usage
assert len(text_chunks) == r.usage.completion_tokens, (len(text_chunks), r.usage)

# Chat, non-streaming and streaming agree (greedy), and the template's end token never shows.
msgs = [{"role": "user", "content": "What is the capital of France?"}]
c = client.chat.completions.create(model=model, messages=msgs, max_tokens=24, temperature=0)
assert c.choices[0].message.role == "assistant"
assert c.choices[0].message.content and "<|im_end|>" not in c.choices[0].message.content
stream = client.chat.completions.create(model=model, messages=msgs, max_tokens=24, temperature=0, stream=True)
parts = [ch.choices[0].delta.content or "" for ch in stream if ch.choices]
assert "".join(parts) == c.choices[0].message.content, ("".join(parts), c.choices[0].message.content)

# JSON mode (response_format json_object): every choice that stops is one JSON object (python's json module
# parses it), greedy or sampled, chat or completion, streamed or not; the stop token never shows; logprobs' bytes
# join to the text. A schema (json_schema) and ignore_eos with JSON mode are 400s.
jm = [{"role": "user", "content": "Describe a cat as a JSON object with its name, age and colour."}]
rf = {"type": "json_object"}
choices = []
g = client.chat.completions.create(model=model, messages=jm, max_tokens=200, temperature=0, response_format=rf,
                                   logprobs=True)
choices.append(g.choices[0])
assert b"".join(bytes(x.bytes) for x in g.choices[0].logprobs.content).decode().lstrip() == \
    g.choices[0].message.content.lstrip()
gs = "".join(ch.choices[0].delta.content or "" for ch in client.chat.completions.create(
    model=model, messages=jm, max_tokens=200, temperature=0, response_format=rf, stream=True) if ch.choices)
assert gs == g.choices[0].message.content, (gs, g.choices[0].message.content)
for seed in range(3):
    choices += client.chat.completions.create(model=model, messages=jm, max_tokens=200, temperature=1.0, seed=seed, n=2,
                                              response_format=rf).choices
cj = client.completions.create(model=model, prompt="A JSON object with a person's name and city:", max_tokens=120,
                               temperature=0.7, seed=3, extra_body={"response_format": rf})
texts = [c.message.content for c in choices] + [cj.choices[0].text]
stops = [c.finish_reason for c in choices] + [cj.choices[0].finish_reason]
assert g.choices[0].finish_reason == "stop", g.choices[0]
assert sum(f == "stop" for f in stops) >= 4, list(zip(stops, texts))
for t, f in zip(texts, stops):
    assert "<|im_end|>" not in t, t
    if f == "stop":
        assert isinstance(json.loads(t), dict), t
for bad in [dict(response_format={"type": "json_schema", "json_schema": {"name": "x"}}),
            dict(response_format=rf, extra_body={"ignore_eos": True})]:
    try:
        client.chat.completions.create(model=model, messages=jm, max_tokens=4, **bad)
        raise AssertionError(f"no error for {bad}")
    except openai.BadRequestError as e:
        assert e.status_code == 400 and "message" in (e.body or {}), e.body
print(f"json mode: {sum(f == 'stop' for f in stops)} of {len(stops)} choices stopped, each a JSON object")

# Structured outputs (response_format json_schema, vLLM's guided_json): the client's own `parse` with a pydantic
# model (its strict schema: $defs / $ref, anyOf with null, enums, bounds, all required, no other keys) gets a validated
# object; every stopped choice validates against its schema by the `jsonschema` package; a schema keyword the
# server cannot enforce is a 400 naming it.
import typing

import jsonschema
import pydantic
from openai.lib._pydantic import to_strict_json_schema


class Pet(pydantic.BaseModel):
    name: typing.Annotated[str, pydantic.Field(max_length=16)]
    kind: typing.Literal["cat", "dog", "bird"]
    age: typing.Optional[typing.Annotated[int, pydantic.Field(ge=0, le=40)]]


class Household(pydantic.BaseModel):
    city: typing.Annotated[str, pydantic.Field(max_length=24)]
    pets: typing.Annotated[list[Pet], pydantic.Field(min_length=1, max_length=2)]


sm = [{"role": "user", "content": "Describe a household in a city with its pets, as JSON."}]
p = client.chat.completions.parse(model=model, messages=sm, max_tokens=300, temperature=0, response_format=Household)
assert p.choices[0].finish_reason == "stop" and isinstance(p.choices[0].message.parsed, Household), p.choices[0]
schema = to_strict_json_schema(Household)
jsonschema.validate(json.loads(p.choices[0].message.content), schema)
rs = {"type": "json_schema", "json_schema": {"name": "household", "schema": schema, "strict": True}}
sch = client.chat.completions.create(model=model, messages=sm, max_tokens=300, temperature=1.0, seed=5, n=2,
                                     response_format=rs).choices
gj = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                       "born": {"type": "integer"}, "tags": {"type": "array", "maxItems": 3,
                                                                            "items": {"enum": ["poet", "king", 7]}}},
      "required": ["name", "born", "tags"], "additionalProperties": False}
cg = client.completions.create(model=model, prompt="A famous person as JSON:", max_tokens=100, temperature=0.7,
                               seed=1, extra_body={"guided_json": gj}).choices[0]
done = [(c.message.content, schema) for c in sch if c.finish_reason == "stop"]
done += [(cg.text, gj)] if cg.finish_reason == "stop" else []
assert len(done) >= 2, [(c.finish_reason, c.message.content) for c in sch] + [(cg.finish_reason, cg.text)]
for t, sc in done:
    jsonschema.validate(json.loads(t), sc)
for bad in [{"type": "object", "properties": {"a": {"type": "string", "pattern": "^x"}}},
            {"type": "object", "properties": {"a": {"type": "number", "multipleOf": 0.5}}}]:
    try:
        client.chat.completions.create(model=model, messages=sm, max_tokens=4, response_format={
            "type": "json_schema", "json_schema": {"name": "x", "schema": bad}})
        raise AssertionError(f"no error for {bad}")
    except openai.BadRequestError as e:
        assert e.status_code == 400 and ("pattern" in str(e.body) or "multipleOf" in str(e.body)), e.body
print(f"json schema: {len(done) + 1} of 4 choices stopped, each valid: {p.choices[0].message.content}")

# Function calling (tools): a named function's choice is a call whose arguments the client's own `parse` reads into
# the pydantic model of the tool (`openai.pydantic_function_tool`, a strict schema); streamed, the call's id and name
# come first and its argument pieces join to the same text; "required" (sampled, n = 3, no parallel calls) gives one
# call a choice, whose arguments validate (`jsonschema`) against that function's parameters; the calls go back into
# the conversation with their results; "auto" on a template with no tool-call format, a function not among the
# tools, a parameters keyword the constraint cannot enforce, tools on /v1/completions are 400s.
class GetWeather(pydantic.BaseModel):
    """Current weather in a city."""
    city: typing.Annotated[str, pydantic.Field(max_length=24)]
    unit: typing.Literal["celsius", "fahrenheit"]
    days: typing.Optional[typing.Annotated[int, pydantic.Field(ge=1, le=7)]]


clock = {"type": "object", "properties": {"timezone": {"type": "string", "maxLength": 32}}, "required": ["timezone"],
         "additionalProperties": False}
tools = [openai.pydantic_function_tool(GetWeather, name="get_weather"),
         {"type": "function", "function": {"name": "get_time", "description": "Time in a timezone", "parameters": clock,
                                           "strict": True}}]
params = {"get_weather": tools[0]["function"]["parameters"], "get_time": clock}
tm = [{"role": "user", "content": "What's the weather like in Paris today?"}]
named = {"type": "function", "function": {"name": "get_weather"}}
n1 = client.chat.completions.parse(model=model, messages=tm, tools=tools, tool_choice=named, max_tokens=160,
                                   temperature=0).choices[0]
assert n1.finish_reason == "stop" and n1.message.content is None and len(n1.message.tool_calls) == 1, n1
call = n1.message.tool_calls[0]
assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("call_"), call
assert isinstance(call.function.parsed_arguments, GetWeather), call
jsonschema.validate(json.loads(call.function.arguments), params["get_weather"])
acc, finish = {}, []
for chunk in client.chat.completions.create(model=model, messages=tm, tools=tools, tool_choice=named, max_tokens=160,
                                            temperature=0, stream=True):
    if not chunk.choices:
        continue
    finish += [chunk.choices[0].finish_reason] if chunk.choices[0].finish_reason else []
    for t in chunk.choices[0].delta.tool_calls or []:
        if t.index in acc:
            assert t.id is None and t.function.name is None, t
        else:
            acc[t.index] = {"id": t.id, "name": t.function.name, "arguments": ""}
        acc[t.index]["arguments"] += t.function.arguments or ""
assert finish == ["stop"] and list(acc) == [0], (finish, acc)
assert acc[0]["name"] == "get_weather" and acc[0]["id"].startswith("call_"), acc
assert acc[0]["arguments"] == call.function.arguments, (acc, call)
rq = client.chat.completions.create(model=model, messages=tm, tools=tools, tool_choice="required",
                                    parallel_tool_calls=False, max_tokens=200, temperature=1.0, seed=3, n=3).choices
made = []
for ch in rq:
    if ch.finish_reason == "length":
        continue
    assert ch.finish_reason == "tool_calls" and ch.message.content is None and len(ch.message.tool_calls) == 1, ch
    t = ch.message.tool_calls[0]
    jsonschema.validate(json.loads(t.function.arguments), params[t.function.name])
    made.append(t.function.name)
assert len(made) >= 2, [(ch.finish_reason, ch.message) for ch in rq]
# The call and its result back in the conversation: the model answers in text.
back = tm + [n1.message.model_dump(exclude_none=True, exclude={"parsed"}),
             {"role": "tool", "tool_call_id": call.id, "content": "18 degrees, sunny"}]
for tc in back[1]["tool_calls"]:
    tc["function"].pop("parsed_arguments", None)
ans = client.chat.completions.create(model=model, messages=back, tools=tools, tool_choice="none", max_tokens=16,
                                     temperature=0).choices[0]
assert ans.message.content and not ans.message.tool_calls and ans.finish_reason in ("stop", "length"), ans
for kw, param, words in [(dict(tools=tools), "tool_choice", "tool-call-parser"),
                         (dict(tools=tools, tool_choice={"type": "function", "function": {"name": "nope"}}),
                          "tool_choice", "nope"),
                         (dict(tools=[{"type": "function", "function": {"name": "f", "parameters": {
                             "type": "object", "properties": {"a": {"type": "string", "pattern": "^x"}}}}}],
                               tool_choice="required"), "tools", "pattern")]:
    try:
        client.chat.completions.create(model=model, messages=tm, max_tokens=4, **kw)
        raise AssertionError(f"no error for {kw}")
    except openai.BadRequestError as e:
        assert e.body.get("param") == param and words in e.body.get("message", ""), e.body
try:
    client.completions.create(model=model, prompt="hi", max_tokens=4, extra_body={"tools": tools})
    raise AssertionError("no error for tools on /v1/completions")
except openai.BadRequestError as e:
    assert e.body.get("param") == "tools", e.body
print(f"tools: get_weather({call.function.arguments}); required: {made}; then {ans.message.content!r}")

# Stop strings end the text and never leak into it (streamed or not).
full = c.choices[0].message.content
words = full.split()
if len(words) >= 3:
    stop = " " + words[2]
    s = client.chat.completions.create(model=model, messages=msgs, max_tokens=24, temperature=0, stop=[stop, "zzzq"])
    got = s.choices[0].message.content
    assert got == full[: full.index(stop)], (got, full, stop)
    assert s.choices[0].finish_reason == "stop"
    st = client.chat.completions.create(model=model, messages=msgs, max_tokens=24, temperature=0, stop=stop, stream=True)
    assert "".join(ch.choices[0].delta.content or "" for ch in st if ch.choices) == got

# Seeded sampling is reproducible.
a = client.completions.create(model=model, prompt="Once upon a time", max_tokens=12, temperature=0.9, top_p=0.95, seed=7)
b = client.completions.create(model=model, prompt="Once upon a time", max_tokens=12, temperature=0.9, top_p=0.95, seed=7)
assert a.choices[0].text == b.choices[0].text

# n choices and a batch of prompts: greedy choices each equal the one-prompt greedy text, indexed prompt by prompt
# (i * n + j); usage counts each prompt once and every choice's tokens; a stream's chunks carry their choice's index.
other = "Once upon a time"
o = client.completions.create(model=model, prompt=other, max_tokens=8, temperature=0)
m = client.completions.create(model=model, prompt=[expected["prompt"], other], max_tokens=8, temperature=0, n=2)
greedy8 = client.completions.create(model=model, prompt=expected["prompt"], max_tokens=8, temperature=0)
want = [greedy8.choices[0].text] * 2 + [o.choices[0].text] * 2
assert [ch.index for ch in m.choices] == [0, 1, 2, 3], m.choices
assert [ch.text for ch in m.choices] == want, ([ch.text for ch in m.choices], want)
assert m.usage.prompt_tokens == greedy8.usage.prompt_tokens + o.usage.prompt_tokens, m.usage
assert m.usage.completion_tokens == 2 * (greedy8.usage.completion_tokens + o.usage.completion_tokens), m.usage
# Sampled choices of one seeded request differ from each other, repeat with the seed, and choice 0 is the n = 1 draw.
kw = dict(model=model, prompt="Once upon a time", max_tokens=12, temperature=0.9, top_p=0.95, seed=7)
s3 = client.completions.create(n=3, **kw)
assert [ch.text for ch in s3.choices] == [ch.text for ch in client.completions.create(n=3, **kw).choices]
assert s3.choices[0].text == a.choices[0].text, (s3.choices[0].text, a.choices[0].text)
assert len({ch.text for ch in s3.choices}) > 1, s3.choices
# echo: each choice's text is its prompt followed by the completion, streamed or not.
e = client.completions.create(model=model, prompt=[expected["prompt"], other], max_tokens=8, temperature=0, echo=True)
assert [ch.text for ch in e.choices] == [expected["prompt"] + greedy8.choices[0].text, other + o.choices[0].text], e.choices
es = client.completions.create(model=model, prompt=other, max_tokens=8, temperature=0, echo=True, stream=True)
assert "".join(ch.choices[0].text for ch in es if ch.choices) == other + o.choices[0].text
# Chat with n, streamed: per-index texts equal the non-streamed choices, one finish per choice, usage once.
ck = dict(model=model, messages=msgs, max_tokens=10, temperature=0.8, seed=3, n=2)
whole = client.chat.completions.create(**ck)
texts, finishes, usages = {}, {}, []
for ch in client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **ck):
    for x in ch.choices:
        texts[x.index] = texts.get(x.index, "") + (x.delta.content or "")
        if x.finish_reason:
            finishes[x.index] = x.finish_reason
    if ch.usage:
        usages.append(ch.usage)
assert texts == {i: ch.message.content for i, ch in enumerate(whole.choices)}, (texts, whole.choices)
assert finishes == {i: ch.finish_reason for i, ch in enumerate(whole.choices)}, finishes
assert len(usages) == 1 and usages[0].completion_tokens == whole.usage.completion_tokens, usages

# AsyncOpenAI: concurrent streams each equal the whole greedy answer; a stream closed early frees its sequence (the
# Rust side checks the pool).
import asyncio


async def concurrent_streams():
    ac = openai.AsyncOpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=120)

    async def one():
        s = await ac.chat.completions.create(model=model, messages=msgs, max_tokens=24, temperature=0, stream=True)
        return "".join([ch.choices[0].delta.content or "" async for ch in s if ch.choices])

    texts = await asyncio.gather(*[one() for _ in range(4)])
    early = await ac.chat.completions.create(model=model, messages=msgs, max_tokens=400, stream=True)
    async for _ in early:
        break
    await early.close()
    await ac.close()
    return texts


assert asyncio.run(concurrent_streams()) == [c.choices[0].message.content] * 4

# Message shapes and request fields real clients send: developer role, text parts, names, a null assistant content
# with an empty tool_calls list (as vLLM's responses carry), neutral function-calling and bookkeeping fields.
shaped = client.chat.completions.create(
    model=model, max_tokens=4, user="u1", metadata={"k": "v"}, store=False, parallel_tool_calls=True,
    tool_choice="none", logit_bias={"28": 1},
    messages=[{"role": "developer", "content": "Be brief."},
              {"role": "user", "name": "bob", "content": [{"type": "text", "text": "Hi"}]},
              {"role": "assistant", "content": None, "tool_calls": []},
              {"role": "user", "content": "Again"}])
assert shaped.choices[0].message.role == "assistant" and shaped.usage.completion_tokens <= 4, shaped

# Log-probabilities of the generated tokens: the log-softmax of an independent float64 numpy Llama
# (tests/py/np_llama.py) over the same GGUF, token by token (greedy: the numpy argmax extends the sequence).
if len(sys.argv) > 4:
    import os

    import numpy as np

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "py"))
    from gguf import GGUFReader
    from np_llama import forward, load_gguf

    cfg, w = load_gguf(sys.argv[4])
    tf = GGUFReader(sys.argv[4]).fields["tokenizer.ggml.tokens"]
    vocab = [bytes(tf.parts[i]).decode("utf-8") for i in tf.data]
    # GPT-2's byte-level alphabet: printable Latin-1 bytes are themselves, the rest U+0100 onward.
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    rest = [b for b in range(256) if b not in printable]
    unbyte = {chr(b): b for b in printable} | {chr(256 + k): b for k, b in enumerate(rest)}

    def token_bytes(i):
        return bytes(unbyte[c] for c in vocab[i])

    def legacy(b):
        # The legacy completions API's token: its text, or OpenAI's "bytes:\\xNN" form for part of a character.
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            return "bytes:" + "".join(f"\\x{x:02x}" for x in b)

    def log_softmax(x):
        m = x.max()
        return x - (m + np.log(np.exp(x - m).sum()))

    ids = [vocab.index(t) for t in ["The", "\u0120capital", "\u0120of", "\u0120France", "\u0120is"]]
    K = 5
    r = client.completions.create(model=model, prompt=ids, max_tokens=8, temperature=0, logprobs=K)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == r.usage.completion_tokens, lp
    assert "".join(lp.tokens) == r.choices[0].text, (lp.tokens, r.choices[0].text)
    assert lp.text_offset == [sum(len(t) for t in lp.tokens[:i]) for i in range(len(lp.tokens))], lp.text_offset
    seq, worst, checked = list(ids), 0.0, 0
    for i in range(len(lp.tokens)):
        ls = log_softmax(forward(cfg, w, seq)[-1])
        order = np.argsort(-ls)
        if ls[order[0]] - ls[order[1]] < 0.05:
            break  # a near-tie: float32 may choose the other token; what follows is another sequence
        t = int(order[0])
        assert lp.tokens[i] == legacy(token_bytes(t)), (i, lp.tokens[i], vocab[t])
        worst = max(worst, abs(lp.token_logprobs[i] - ls[t]))
        top = {legacy(token_bytes(int(j))): ls[j] for j in order[:K]}
        assert set(top) <= set(lp.top_logprobs[i]), (i, top, lp.top_logprobs[i])
        worst = max([worst] + [abs(lp.top_logprobs[i][k] - v) for k, v in top.items()])
        seq.append(t)
        checked += 1
    assert checked >= 3 and worst < 2e-3, (checked, worst)
    print(f"logprobs: {checked} tokens x {K + 1} values within {worst:.2e} of float64 numpy")
    # Streamed: the same values, a chunk a token, text_offset running on.
    chunks = [c for c in client.completions.create(model=model, prompt=ids, max_tokens=8, temperature=0, logprobs=K,
                                                    stream=True) if c.choices and c.choices[0].logprobs]
    assert sum((c.choices[0].logprobs.tokens for c in chunks), []) == lp.tokens
    assert sum((c.choices[0].logprobs.token_logprobs for c in chunks), []) == lp.token_logprobs
    assert sum((c.choices[0].logprobs.text_offset for c in chunks), []) == lp.text_offset
    # Chat: `logprobs` + `top_logprobs`; each token's bytes, joined, are the message; streamed equals whole.
    ck = dict(model=model, messages=msgs, max_tokens=12, temperature=0, logprobs=True, top_logprobs=3)
    c1 = client.chat.completions.create(**ck)
    content = c1.choices[0].logprobs.content
    assert len(content) == c1.usage.completion_tokens, (len(content), c1.usage)
    assert b"".join(bytes(x.bytes) for x in content).decode() == c1.choices[0].message.content
    assert all(len(x.top_logprobs) == 3 and x.top_logprobs[0].logprob >= x.logprob - 1e-6 for x in content), content
    assert all(x.logprob <= 0 for x in content)
    streamed = [x for ch in client.chat.completions.create(stream=True, **ck) if ch.choices and ch.choices[0].logprobs
                for x in ch.choices[0].logprobs.content]
    assert [(x.token, x.logprob) for x in streamed] == [(x.token, x.logprob) for x in content]
    # Characters made of several tokens (emoji) and a stop string: every text_offset points at its token's text in
    # the choice's text (a character's tokens at its start; byte pieces as "bytes:"), and no token after the stop
    # string is listed.
    for kw in [dict(prompt="Emojis: 🌟🌟 and more:", max_tokens=16, echo=True),
               dict(prompt="1, 2, 3, 4,", max_tokens=12, stop="6, 7"),
               dict(prompt="Count: 1, 2, 3,", max_tokens=12, stop=["5"])]:
        for stream in (False, True):
            if stream:
                cs = [c.choices[0] for c in client.completions.create(model=model, temperature=0, logprobs=2,
                                                                       stream=True, **kw) if c.choices]
                text = "".join(c.text for c in cs)
                toks = sum((c.logprobs.tokens for c in cs if c.logprobs), [])
                offs = sum((c.logprobs.text_offset for c in cs if c.logprobs), [])
                tops = sum((c.logprobs.top_logprobs for c in cs if c.logprobs), [])
            else:
                ch = client.completions.create(model=model, temperature=0, logprobs=2, **kw).choices[0]
                text, toks, offs, tops = ch.text, ch.logprobs.tokens, ch.logprobs.text_offset, ch.logprobs.top_logprobs
            assert offs == sorted(offs) and all(o <= len(text) for o in offs), (kw, text, offs)
            for t, o, top in zip(toks, offs, tops):
                assert t.startswith("bytes:") or text[o:].startswith(t) or (kw.get("stop") and o + len(t) > len(text)), \
                    (kw, t, o, text)
                assert top is None or len(top) >= 2, (kw, t, top)
            if kw.get("stop"):
                assert "".join(t for t in toks if not t.startswith("bytes:")).startswith(text), (kw, toks, text)
                assert all(o < len(text) for o in offs), ("a token after the stop string", kw, toks, offs, text)
    print("logprobs text offsets: emoji and stop strings")
    # Sampled tokens get theirs too (the model's distribution, before temperature and top-p).
    sm = client.completions.create(model=model, prompt="Once upon a time", max_tokens=6, temperature=0.9, seed=5,
                                   logprobs=0)
    assert sm.choices[0].text == client.completions.create(model=model, prompt="Once upon a time", max_tokens=6,
                                                            temperature=0.9, seed=5).choices[0].text
    assert all(x <= 0 for x in sm.choices[0].logprobs.token_logprobs)
    assert [len(d) for d in sm.choices[0].logprobs.top_logprobs] == [1] * len(sm.choices[0].logprobs.tokens)
    # echo with logprobs (lm-evaluation-harness' loglikelihood requests): the prompt's tokens come first, the first
    # without a value, each later one numpy's log-softmax at it; the same the second time, when its blocks are in the
    # prefix cache (a prompt being scored is recomputed, not taken from it).
    long_ids = ids * 8
    lg = forward(cfg, w, long_ids)
    lsm = lg - (lg.max(-1, keepdims=True) + np.log(np.exp(lg - lg.max(-1, keepdims=True)).sum(-1, keepdims=True)))
    want_lp = [lsm[i - 1][long_ids[i]] for i in range(1, len(long_ids))]
    for attempt in range(2):
        e = client.completions.create(model=model, prompt=long_ids, max_tokens=1, temperature=0, logprobs=1, echo=True)
        el = e.choices[0].logprobs
        assert len(el.tokens) == len(long_ids) + 1, (len(el.tokens), len(long_ids))
        assert el.token_logprobs[0] is None and el.top_logprobs[0] is None, el.token_logprobs[:2]
        assert "".join(el.tokens[: len(long_ids)]) == b"".join(token_bytes(i) for i in long_ids).decode()
        d = max(abs(a - b) for a, b in zip(el.token_logprobs[1 : len(long_ids)], want_lp))
        assert d < 2e-3, (attempt, d)
        assert abs(el.token_logprobs[-1] - lsm[-1].max()) < 2e-3  # the generated (greedy) token
        assert all(max(t.values()) >= v - 1e-6 for t, v in zip(el.top_logprobs[1:], el.token_logprobs[1:]))
        if attempt == 0:
            print(f"prompt logprobs: {len(want_lp)} positions within {d:.2e} of float64 numpy")
    es = [c.choices[0] for c in client.completions.create(model=model, prompt=long_ids, max_tokens=1, temperature=0,
                                                          logprobs=1, echo=True, stream=True) if c.choices]
    assert "".join(c.text for c in es) == e.choices[0].text
    assert sum((c.logprobs.token_logprobs for c in es if c.logprobs), []) == el.token_logprobs
    assert sum((c.logprobs.text_offset for c in es if c.logprobs), []) == el.text_offset
    # logit_bias, the presence / frequency penalties (OpenAI's formula, counts over the generated tokens), vLLM's
    # repetition_penalty (HF's rule over the prompt's and the generated tokens) and min_tokens (the stop tokens masked
    # until then), greedy: the same tokens as numpy's argmax of the changed logits, step by step.
    gf = GGUFReader(sys.argv[4]).fields
    stops = {int(gf["tokenizer.ggml.eos_token_id"].parts[-1][0])}
    stops |= {vocab.index(t) for t in ["<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>"] if t in vocab}

    def np_greedy(prompt, n, bias, presence, frequency, rep=1.0, min_tokens=0):
        seq, out = list(prompt), []
        for _ in range(n):
            x = forward(cfg, w, seq)[-1]
            for t, b in bias.items():
                x[t] += b
            for t in set(seq):
                x[t] = x[t] / rep if x[t] > 0 else x[t] * rep
            for t in set(out):
                x[t] -= presence + frequency * out.count(t)
            if len(out) < min_tokens:
                x[list(stops)] = -np.inf
            o = np.argsort(-x)
            if x[o[0]] - x[o[1]] < 1e-3:
                break  # a near-tie: float32 may choose the other token
            if int(o[0]) in stops:
                break
            out.append(int(o[0]))
            seq.append(int(o[0]))
        return out

    first = int(np.argmax(forward(cfg, w, ids)[-1]))
    cases = [({}, 0.5, 1.5, 1.0), ({str(first): -100, "28": 3.5}, 0.0, 0.0, 1.0), ({"504": 100}, 0.0, 0.0, 1.0),
             ({}, -1.0, 0.0, 1.0), ({}, 0.0, 0.0, 1.3), ({}, 0.2, 0.0, 0.8)]
    for bias, presence, frequency, rep in cases:
        r = client.completions.create(model=model, prompt=ids, max_tokens=10, temperature=0, logprobs=0,
                                      logit_bias=bias, presence_penalty=presence, frequency_penalty=frequency,
                                      extra_body={"repetition_penalty": rep})
        want = np_greedy(ids, 10, {int(k): v for k, v in bias.items()}, presence, frequency, rep)
        got = r.choices[0].logprobs.tokens
        assert len(want) >= 3 and got[: len(want)] == [token_bytes(t).decode("utf-8", errors="replace") for t in want], (
            bias, presence, frequency, rep, got, [vocab[t] for t in want])
    # min_tokens: a chat turn that ends after k tokens goes on to k + 4 with its stop tokens masked until then
    import urllib.request

    q = {"messages": [{"role": "user", "content": "What is 2+2? Answer with a number only."}]}
    req = urllib.request.Request(base + "/tokenize", data=json.dumps(q).encode(), headers={"content-type": "application/json"})
    chat_ids = json.loads(urllib.request.urlopen(req, timeout=60).read())["tokens"]
    nat = client.completions.create(model=model, prompt=chat_ids, max_tokens=40, temperature=0)
    k = nat.usage.completion_tokens
    assert nat.choices[0].finish_reason == "stop" and k < 16, nat
    mt = client.completions.create(model=model, prompt=chat_ids, max_tokens=k + 12, temperature=0, logprobs=0,
                                   extra_body={"min_tokens": k + 4})
    want = np_greedy(chat_ids, k + 12, {}, 0.0, 0.0, 1.0, min_tokens=k + 4)
    got = mt.choices[0].logprobs.tokens
    assert mt.usage.completion_tokens >= k + 4 and len(want) >= k + 4, (k, mt, want)
    assert got[: len(want)] == [token_bytes(t).decode("utf-8", errors="replace") for t in want], (got, want)
    cases.append("min_tokens")
    # min_p: every sampled token's probability at the temperature is at least min_p × the most likely one's (the
    # model's own log-probabilities, checked against numpy above)
    T, MP = 1.5, 0.3
    for ch in client.completions.create(model=model, prompt="Once upon a time", max_tokens=16, temperature=T, seed=9,
                                        n=3, logprobs=5, extra_body={"min_p": MP}).choices:
        for lp, top in zip(ch.logprobs.token_logprobs, ch.logprobs.top_logprobs):
            assert lp - max(top.values()) >= T * np.log(MP) - 1e-4, (lp, top)
    # vLLM's guided_choice: the text is exactly one of the strings; greedy, the same tokens as numpy's argmax over the
    # tokens whose bytes extend the text within a choice (a stop token once the text is one), step by step.
    tb = [token_bytes(t) for t in range(len(vocab))]

    def np_choice(prompt, choices, n=12):
        seq, text, out = list(prompt), b"", []
        for _ in range(n):
            x = forward(cfg, w, seq)[-1]
            ok = [t for t in range(len(vocab)) if tb[t] and any(c.startswith(text + tb[t]) for c in choices)]
            ok += sorted(stops) if text in choices else []
            best = max(ok, key=lambda t: x[t])
            if best in stops:
                break
            out.append(best)
            seq.append(best)
            text += tb[best]
        return text.decode()

    for prompt, choices in [(ids, ["Paris", "Lyon", "Marseille"]), (chat_ids, ["4", "four", "IV", "4.0"]),
                            (ids, ["a city", "a country", "the capital"])]:
        r = client.completions.create(model=model, prompt=prompt, max_tokens=12, temperature=0,
                                      extra_body={"guided_choice": choices})
        want = np_choice(prompt, [c.encode() for c in choices])
        assert r.choices[0].text == want and want in choices and r.choices[0].finish_reason == "stop", (r, want)
    cases.append("guided_choice")
    # vLLM's guided_regex and structured_outputs.regex: the whole text matches the pattern; greedy, the same tokens as
    # numpy's argmax over the tokens after which the text can still match (the `regex` module's partial full match,
    # an implementation of its own), a stop token once it matches whole.
    import regex as mrab

    def np_constrained(prompt, n, allowed, whole):
        """numpy's greedy (text, finish reason) under a constraint: the argmax over the tokens `allowed(text)` gives,
        and the stop tokens where `whole(text)`."""
        seq, text = list(prompt), ""
        for _ in range(n):
            x = forward(cfg, w, seq)[-1]
            ok = allowed(text) + (sorted(stops) if whole(text) else [])
            best = max(ok, key=lambda t: x[t])
            if best in stops:
                return text, "stop"
            seq.append(best)
            text += tb[best].decode()
        return text, "length"

    def regex_allowed(pattern, text):
        ok = []
        for t in range(len(vocab)):
            try:
                s = text + tb[t].decode()
            except UnicodeDecodeError:
                continue
            if tb[t] and mrab.fullmatch(pattern, s, partial=True):
                ok.append(t)
        return ok

    def np_regex(prompt, pattern, n):
        return np_constrained(prompt, n, lambda text: regex_allowed(pattern, text),
                              lambda text: mrab.fullmatch(pattern, text))

    for prompt, pattern, how in [(ids, r"[0-9]{3}-[0-9]{4}", "guided_regex"),
                                 (chat_ids, r"(yes|no|maybe)\.", "structured_outputs"),
                                 (ids, r"[A-Z][a-z]+( [a-z]+){1,3}", "structured_outputs")]:
        body = {"guided_regex": pattern} if how == "guided_regex" else {"structured_outputs": {"regex": pattern}}
        r = client.completions.create(model=model, prompt=prompt, max_tokens=10, temperature=0, extra_body=body)
        want = np_regex(prompt, pattern, 10)
        got = (r.choices[0].text, r.choices[0].finish_reason)
        assert got == want, (pattern, got, want)
        assert mrab.fullmatch(pattern, got[0], partial=got[1] == "length"), got
        cases.append(f"regex {pattern}")
    # Sampled, chat and streamed: every choice that stops matches whole, every other one is a prefix of a match.
    pat = r"(red|green|blue)( and (red|green|blue))*"
    rc = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Name colours."}], n=4,
                                        max_tokens=12, temperature=1.0, seed=5, extra_body={"structured_outputs": {"regex": pat}})
    st = client.completions.create(model=model, prompt=ids, max_tokens=12, temperature=0.8, seed=6, stream=True,
                                   extra_body={"guided_regex": pat})
    streamed = "".join(c.choices[0].text for c in st if c.choices)
    for text, fin in [(c.message.content, c.finish_reason) for c in rc.choices] + [(streamed, None)]:
        assert mrab.fullmatch(pat, text, partial=fin != "stop"), (text, fin)
    print(f"guided_regex: 3 greedy texts equal to numpy's, {len(rc.choices) + 1} sampled (chat, streamed) within the pattern")
    # vLLM's guided_grammar and structured_outputs.grammar (GBNF): the text is a sentence of the grammar; greedy, the
    # same tokens as numpy's argmax over the tokens after which the text is still a prefix of a sentence — decided by
    # lark's LALR parser over the same language (one character a terminal: an LR parser stops at the first character
    # no sentence can have there), a stop token once lark parses the text whole. Sampled, chat and streamed: each
    # stopped text parses, each other one is a prefix. vLLM's documented SQL example: a sentence of its finite language.
    from lark import Lark
    from lark.exceptions import UnexpectedInput
    gbnf = (
        'root ::= expr\n'
        'expr ::= term (("+" | "-") term)*\n'
        'term ::= factor (("*" | "/") factor)*\n'
        'factor ::= [0-9]+ | "(" expr ")"\n'
    )
    lk = Lark('start: expr\nexpr: term (ADDOP term)*\nterm: factor (MULOP factor)*\nfactor: DIGIT+ | "(" expr ")"\n'
              'ADDOP: "+" | "-"\nMULOP: "*" | "/"\nDIGIT: "0".."9"\n', parser="lalr", lexer="basic")

    def lark_prefix(text):
        try:
            ip = lk.parse_interactive(text)
            ip.exhaust_lexer()
            return True
        except UnexpectedInput:
            return False

    def lark_whole(text):
        try:
            lk.parse(text)
            return True
        except UnexpectedInput:
            return False

    alphabet = set(b"0123456789+-*/()")
    arith = [t for t in range(len(vocab)) if tb[t] and set(tb[t]) <= alphabet]  # no other token is in a sentence

    def np_grammar(prompt, n):
        return np_constrained(prompt, n, lambda text: [t for t in arith if lark_prefix(text + tb[t].decode())],
                              lark_whole)

    for prompt, how in [(ids, "guided_grammar"), (chat_ids, "structured_outputs")]:
        body = {"guided_grammar": gbnf} if how == "guided_grammar" else {"structured_outputs": {"grammar": gbnf}}
        r = client.completions.create(model=model, prompt=prompt, max_tokens=10, temperature=0, extra_body=body)
        want = np_grammar(prompt, 10)
        got = (r.choices[0].text, r.choices[0].finish_reason)
        assert got == want, (how, got, want)
        cases.append(f"grammar {how}")
    gc = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Write a sum."}], n=4,
                                        max_tokens=16, temperature=1.0, seed=7, extra_body={"guided_grammar": gbnf})
    gs = client.completions.create(model=model, prompt=ids, max_tokens=16, temperature=0.9, seed=8, stream=True,
                                   extra_body={"structured_outputs": {"grammar": gbnf}})
    gstreamed = "".join(c.choices[0].text for c in gs if c.choices)
    for text, fin in [(c.message.content, c.finish_reason) for c in gc.choices] + [(gstreamed, None)]:
        assert (lark_whole if fin == "stop" else lark_prefix)(text), (text, fin)
    sql = ('root ::= select_statement\nselect_statement ::= "SELECT " column " from " table " where " condition\n'
           'column ::= "col_1 " | "col_2 "\ntable ::= "table_1 " | "table_2 "\ncondition ::= column "= " number\n'
           'number ::= "1 " | "2 "\n')
    q = client.chat.completions.create(model=model, temperature=0, max_tokens=40, extra_body={"guided_grammar": sql},
                                      messages=[{"role": "user", "content": "Generate an SQL query."}])
    assert q.choices[0].finish_reason == "stop", q
    assert mrab.fullmatch(r"SELECT col_[12]  from table_[12]  where col_[12] = [12] ", q.choices[0].message.content), q
    print(f"guided_grammar: 2 greedy texts equal to numpy's under lark, {len(gc.choices) + 1} sampled within the "
          f"grammar, the SQL example: {q.choices[0].message.content!r}")
    print(f"logit_bias and penalties: {len(cases)} greedy runs equal to numpy's; min_p's draws within its bound")
    expect_shape = [dict(logit_bias={"x": 1}), dict(logit_bias={"49152": 1}), dict(frequency_penalty=2.5),
                    dict(extra_body={"repetition_penalty": 0}), dict(extra_body={"min_p": 1.5}),
                    dict(extra_body={"min_tokens": 9})]

    # max_tokens 0 with echo: the prompt alone, scored (what scoring clients send); 0 without echo is an error.
    z = client.completions.create(model=model, prompt=long_ids, max_tokens=0, temperature=0, logprobs=2, echo=True)
    assert z.usage.completion_tokens == 0 and z.choices[0].finish_reason == "length", z.usage
    assert z.choices[0].logprobs.token_logprobs == el.token_logprobs[:-1], "the prompt's scores, nothing generated"
    assert z.choices[0].logprobs.tokens == el.tokens[:-1]
    zs = [c.choices[0] for c in client.completions.create(model=model, prompt=long_ids, max_tokens=0, temperature=0,
                                                          logprobs=2, echo=True, stream=True) if c.choices]
    assert sum((c.logprobs.token_logprobs for c in zs if c.logprobs), []) == z.choices[0].logprobs.token_logprobs
    assert "".join(c.text for c in zs) == z.choices[0].text
    expect_lp = [dict(logprobs=21, max_tokens=4), dict(logprobs=2, max_tokens=0)]
else:
    expect_lp, expect_shape = [], []

# Errors come back as OpenAI errors with 4xx statuses.
def expect(exc, status, **kw):
    try:
        client.completions.create(**kw)
    except exc as e:
        assert e.status_code == status, (e.status_code, kw)
        body = e.body if isinstance(e.body, dict) else {}
        assert "message" in body, e.body
        return body
    raise AssertionError(f"no error for {kw}")

expect(openai.BadRequestError, 400, model=model, prompt="hi", max_tokens=-1)
for body in [{"guided_regex": "(?=a)b"}, {"guided_regex": ""}, {"structured_outputs": {"grammar": "root ::= x"}},
             {"structured_outputs": {"regex": "a", "choice": ["a"]}}, {"structured_outputs": {"regexp": "a"}},
             {"guided_grammar": "root ::= x"}, {"structured_outputs": {"regex": "[0-9]{3}"}, "guided_choice": ["1"]},
             {"guided_grammar": "root ::= root \"a\" | \"b\""}, {"guided_grammar": "start: \"a\""}]:
    expect(openai.BadRequestError, 400, model=model, prompt="hi", extra_body=body)
expect(openai.BadRequestError, 400, model=model, prompt="hi", max_tokens=4, n=0)
expect(openai.BadRequestError, 400, model=model, prompt="hi", max_tokens=4, n=2, best_of=3)
for kw in expect_lp:
    expect(openai.BadRequestError, 400, model=model, prompt="hi", **kw)
for kw in expect_shape:
    expect(openai.BadRequestError, 400, model=model, prompt="hi", max_tokens=4, **kw)
expect(openai.BadRequestError, 400, model=model, prompt="hi", max_tokens=4, temperature=5)
nf = expect(openai.NotFoundError, 404, model="/etc/passwd", prompt="hi", max_tokens=4)
assert nf.get("code") == "model_not_found" and nf.get("type") and "param" in nf, nf
long = expect(openai.BadRequestError, 400, model=model, prompt="word " * 7000, max_tokens=4)
assert long.get("code") == "context_length_exceeded", long
print("OK")
