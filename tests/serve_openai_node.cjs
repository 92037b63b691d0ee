// The official `openai` Node.js client against a running `trtforge serve` (driven by tests/serve.rs; scripts/test.sh
// installs the pinned client under target/npm, found through NODE_PATH).
//
// Usage: node serve_openai_node.cjs BASE_URL MODEL EXPECTED_JSON
// EXPECTED_JSON: {"prompt": str, "max_tokens": int, "text": str} -- `trtforge generate --greedy`'s text for it.
// Prints "OK" and exits 0 when every check passes.
"use strict";
const assert = require("node:assert/strict");
const OpenAI = require("openai");

const [base, model, expectedJson] = process.argv.slice(2);
const expected = JSON.parse(expectedJson);
const client = new OpenAI({ baseURL: base + "/v1", apiKey: "unused", maxRetries: 0, timeout: 120000 });
const msgs = [{ role: "user", content: "What is the capital of France?" }];

async function collect(stream) {
  const out = [];
  for await (const c of stream) out.push(c);
  return out;
}

// The error the client raised: its class, status and OpenAI's error object.
async function failure(p) {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, String(e));
    for (const k of ["message", "type", "param", "code"]) assert.ok(k in e.error, JSON.stringify(e.error));
    return e;
  }
  assert.fail("no error");
}

(async () => {
  // Models: a served name with a slash, which the client escapes.
  const list = await client.models.list();
  assert.deepEqual(list.data.map((m) => m.id), [model]);
  assert.equal((await client.models.retrieve(model)).id, model);

  // Completions: greedy text equals `generate --greedy`, whole and streamed, with the usage chunk last.
  const req = { model, prompt: expected.prompt, max_tokens: expected.max_tokens, temperature: 0 };
  const r = await client.completions.create(req);
  assert.equal(r.object, "text_completion");
  assert.equal(r.choices[0].text, expected.text);
  assert.ok("system_fingerprint" in r, JSON.stringify(r));
  const cs = await collect(await client.completions.create({ ...req, stream: true, stream_options: { include_usage: true } }));
  assert.equal(cs.map((c) => (c.choices[0] ? c.choices[0].text : "")).join(""), expected.text);
  const last = cs[cs.length - 1];
  assert.deepEqual([last.choices, last.usage.completion_tokens], [[], r.usage.completion_tokens]);
  assert.ok(cs.slice(0, -1).every((c) => c.usage === null), "usage: null before the usage chunk");

  // Chat, whole and streamed (role chunk first, one finish, usage last), and the stream helper.
  const chat = { model, messages: msgs, max_completion_tokens: 16, temperature: 0 };
  const c = await client.chat.completions.create(chat);
  assert.equal(c.object, "chat.completion");
  assert.equal(c.choices[0].message.role, "assistant");
  assert.ok(c.usage.completion_tokens <= 16 && c.usage.total_tokens === c.usage.prompt_tokens + c.usage.completion_tokens);
  const chunks = await collect(await client.chat.completions.create({ ...chat, stream: true, stream_options: { include_usage: true } }));
  assert.ok(chunks.every((x) => x.object === "chat.completion.chunk" && x.id === chunks[0].id));
  assert.equal(chunks[0].choices[0].delta.role, "assistant");
  assert.equal(chunks.map((x) => (x.choices[0] && x.choices[0].delta.content) || "").join(""), c.choices[0].message.content);
  assert.deepEqual(chunks.filter((x) => x.choices[0] && x.choices[0].finish_reason).map((x) => x.choices[0].finish_reason),
    [c.choices[0].finish_reason]);
  assert.equal(chunks[chunks.length - 1].usage.completion_tokens, c.usage.completion_tokens);
  const final = await client.chat.completions.stream(chat).finalChatCompletion();
  assert.equal(final.choices[0].message.content, c.choices[0].message.content);

  // n, seed, stop sequences and log-probabilities.
  const seeded = { model, messages: msgs, max_tokens: 8, temperature: 0.9, seed: 11, n: 2, logprobs: true, top_logprobs: 2 };
  const a = await client.chat.completions.create(seeded);
  const b = await client.chat.completions.create(seeded);
  assert.deepEqual(a.choices.map((x) => x.index), [0, 1]);
  assert.deepEqual(a.choices.map((x) => x.message.content), b.choices.map((x) => x.message.content));
  for (const ch of a.choices) {
    assert.ok(ch.logprobs.content.every((t) => t.logprob <= 0 && t.top_logprobs.length === 2));
  }
  const words = c.choices[0].message.content.split(" ");
  if (words.length >= 3) {
    const stop = " " + words[2];
    const s = await client.chat.completions.create({ ...chat, stop: [stop] });
    assert.equal(s.choices[0].message.content, c.choices[0].message.content.slice(0, c.choices[0].message.content.indexOf(stop)));
    assert.equal(s.choices[0].finish_reason, "stop");
  }
  const lp = await client.completions.create({ ...req, max_tokens: 4, logprobs: 2 });
  assert.equal(lp.choices[0].logprobs.tokens.join(""), lp.choices[0].text);

  // Message shapes real clients send: developer role, text parts, a null assistant content, an empty tool_calls,
  // names, and neutral request fields.
  const shaped = await client.chat.completions.create({
    model, max_tokens: 4, user: "u1", metadata: { k: "v" }, store: false, parallel_tool_calls: true, tool_choice: "none",
    logit_bias: { "28": 1 },
    messages: [
      { role: "developer", content: "Be brief." },
      { role: "user", name: "bob", content: [{ type: "text", text: "Hi" }] },
      { role: "assistant", content: null, tool_calls: [] },
      { role: "user", content: "Again" },
    ],
  });
  assert.equal(shaped.choices.length, 1);

  // Aborting a stream (AbortController) ends it; the server frees the sequence (the Rust side checks the pool).
  const ac = new AbortController();
  const long = await client.chat.completions.create({ model, messages: msgs, max_tokens: 500, stream: true }, { signal: ac.signal });
  let seen = 0;
  try {
    for await (const _ of long) if (++seen === 2) ac.abort();
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIUserAbortError, String(e));
  }
  assert.equal(seen, 2);

  // Errors: the client's classes, OpenAI's error object.
  // Function calling: "auto" (the default with tools) on a template with no tool-call format is a 400 naming
  // tool_choice; a named function comes back as a call whose arguments parse and fit its parameters, and streamed
  // the SDK's chunks add up to the same call.
  let e = await failure(client.chat.completions.create({ model, messages: msgs, tools: [{ type: "function", function: { name: "f" } }] }));
  assert.ok(e instanceof OpenAI.BadRequestError && e.error.param === "tool_choice", String(e));
  const weather = {
    type: "object", additionalProperties: false, required: ["city"], properties: { city: { type: "string", maxLength: 20 } },
  };
  const forced = {
    model, messages: [{ role: "user", content: "What is the weather in Rome?" }], max_tokens: 60, temperature: 0,
    tools: [{ type: "function", function: { name: "get_weather", parameters: weather } }],
    tool_choice: { type: "function", function: { name: "get_weather" } },
  };
  const tc = await client.chat.completions.create(forced);
  assert.equal(tc.choices[0].finish_reason, "stop", JSON.stringify(tc));
  const call = tc.choices[0].message.tool_calls[0];
  assert.ok(call.id.startsWith("call_") && call.function.name === "get_weather", JSON.stringify(call));
  const args = JSON.parse(call.function.arguments);
  assert.deepEqual(Object.keys(args), ["city"], call.function.arguments);
  assert.ok(typeof args.city === "string" && [...args.city].length <= 20, call.function.arguments);
  let streamed = "", name = null;
  for await (const ch of await client.chat.completions.create({ ...forced, stream: true })) {
    for (const t of ch.choices[0]?.delta?.tool_calls ?? []) {
      name ??= t.function?.name;
      streamed += t.function?.arguments ?? "";
    }
  }
  assert.equal(name, "get_weather");
  assert.equal(streamed, call.function.arguments);
  // JSON mode is served (a stopped choice parses as one object), and a schema; a keyword it cannot enforce is a 400.
  const jm = await client.chat.completions.create({
    model, messages: [{ role: "user", content: "A JSON object with a city and its country." }], max_tokens: 120,
    temperature: 0, response_format: { type: "json_object" },
  });
  assert.equal(jm.choices[0].finish_reason, "stop", JSON.stringify(jm));
  const parsed = JSON.parse(jm.choices[0].message.content);
  assert.ok(parsed !== null && typeof parsed === "object" && !Array.isArray(parsed), jm.choices[0].message.content);
  const city = {
    type: "object", additionalProperties: false, required: ["city", "country", "people"],
    properties: { city: { type: "string", maxLength: 24 }, country: { type: "string", maxLength: 24 }, people: { type: "integer" } },
  };
  const js = await client.chat.completions.create({
    model, messages: [{ role: "user", content: "A city, its country and its population as JSON." }], max_tokens: 120,
    temperature: 0, response_format: { type: "json_schema", json_schema: { name: "city", schema: city, strict: true } },
  });
  assert.equal(js.choices[0].finish_reason, "stop", JSON.stringify(js));
  const o = JSON.parse(js.choices[0].message.content);
  assert.deepEqual(Object.keys(o).sort(), ["city", "country", "people"], js.choices[0].message.content);
  assert.ok(typeof o.city === "string" && [...o.city].length <= 24 && typeof o.country === "string"
    && [...o.country].length <= 24 && Number.isInteger(o.people), js.choices[0].message.content);
  e = await failure(client.chat.completions.create({
    model, messages: msgs,
    response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "string", pattern: "^a" } } },
  }));
  assert.ok(e instanceof OpenAI.BadRequestError && e.error.param === "response_format" && /pattern/.test(e.message));
  e = await failure(client.chat.completions.create({ model: "gpt-4o", messages: msgs }));
  assert.ok(e instanceof OpenAI.NotFoundError && e.error.code === "model_not_found", e.message);
  e = await failure(client.models.retrieve("no/such-model"));
  assert.ok(e instanceof OpenAI.NotFoundError);
  e = await failure(client.completions.create({ model, prompt: "word ".repeat(7000), max_tokens: 4 }));
  assert.ok(e instanceof OpenAI.BadRequestError && e.error.code === "context_length_exceeded");
  console.log("OK");
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
