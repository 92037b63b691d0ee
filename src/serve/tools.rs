//! Function calling (OpenAI's `tools`): the request's tools and `tool_choice`, the JSON Schemas that constrain
//! `"required"` and a named function's choices (vLLM's way: decoding shaped by `backend::json_mode`), and the
//! tool-call formats models write, which `"auto"` reads from a choice's text: Hermes / Qwen's
//! `<tool_call>{...}</tool_call>`, Llama 3.1+'s JSON (`{"name": ..., "parameters": ...}`, after `<|python_tag|>` or
//! alone), Mistral's `[TOOL_CALLS] [...]`. The format is the chat template's (it writes past assistant tool calls
//! in it) unless `serve --tool-call-parser` names one.
use serde_json::{json, Map, Value};

/// One `{"type": "function", "function": {...}}` of a request's `tools`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    /// The arguments' JSON Schema (`{"type": "object", "properties": {}}` where the function has none).
    pub parameters: Value,
}

/// `tool_choice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model answers in text (the template still sees the tools, as vLLM's does by default).
    None,
    /// The model may call: its text is read in the model's tool-call format.
    Auto,
    /// At least one call (one unless `parallel_tool_calls`): the choice is constrained to a JSON list of calls.
    Required,
    /// This function: the choice is constrained to its arguments.
    Named(String),
}

/// A request's function calling: its tools, as the chat template gets them, and what it asks of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolRequest {
    pub tools: Vec<Tool>,
    /// `tools` as the client sent it: what the chat template renders (`apply_chat_template(tools=...)`).
    pub spec: Value,
    pub choice: ToolChoice,
    /// `parallel_tool_calls` (OpenAI's default true): more than one call in a choice.
    pub parallel: bool,
}

/// The longest function name OpenAI accepts (names are `[a-zA-Z0-9_-]`, as its API checks).
const MAX_NAME: usize = 64;
/// Tools a request may declare.
pub const MAX_TOOLS: usize = 128;

impl ToolRequest {
    /// `tools`, `tool_choice` and `parallel_tool_calls` of a request body: `Ok(None)` without tools (where
    /// `tool_choice` may only be "none"); errors name the parameter.
    pub fn parse(o: &Map<String, Value>) -> Result<Option<ToolRequest>, (String, &'static str)> {
        // (api.rs's `field`, which this module may not import: api imports this one)
        let present = |k: &str| o.get(k).filter(|v| !v.is_null());
        let parallel = match present("parallel_tool_calls") {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(("'parallel_tool_calls' must be a boolean".into(), "parallel_tool_calls")),
        };
        let spec = match present("tools") {
            None => None,
            Some(Value::Array(a)) if a.is_empty() => None,
            Some(Value::Array(a)) if a.len() > MAX_TOOLS => {
                return Err((format!("at most {MAX_TOOLS} tools a request, got {}", a.len()), "tools"))
            }
            Some(v @ Value::Array(_)) => Some(v.clone()),
            Some(_) => {
                return Err(("'tools' must be a list of {\"type\": \"function\", \"function\": {...}}".into(), "tools"))
            }
        };
        let choice = present("tool_choice");
        let Some(spec) = spec else {
            return match choice {
                None => Ok(None),
                Some(Value::String(s)) if s == "none" => Ok(None),
                Some(_) => Err(("'tool_choice' other than \"none\" needs 'tools'".into(), "tool_choice")),
            };
        };
        let mut tools: Vec<Tool> = Vec::new();
        for (i, t) in spec.as_array().into_iter().flatten().enumerate() {
            let bad = |m: &str| Err((format!("tools[{i}]: {m}"), "tools"));
            let Some(t) = t.as_object() else { return bad("must be an object") };
            match t.get("type").and_then(Value::as_str) {
                Some("function") => {}
                Some(other) => return bad(&format!("type {other:?} is not supported (only \"function\")")),
                None => return bad("needs \"type\": \"function\""),
            }
            let Some(f) = t.get("function").and_then(Value::as_object) else {
                return bad("needs \"function\": {\"name\": ..., \"parameters\": {...}}");
            };
            let name = match f.get("name") {
                Some(Value::String(n))
                    if !n.is_empty()
                        && n.len() <= MAX_NAME
                        && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
                {
                    n.clone()
                }
                Some(Value::String(n)) => {
                    return bad(&format!("function name {n:?} must be 1 to {MAX_NAME} of a-z, A-Z, 0-9, _ and -"))
                }
                _ => return bad("function.name is required (a string)"),
            };
            if tools.iter().any(|x| x.name == name) {
                return bad(&format!("function name {name:?} is declared twice"));
            }
            let parameters = match f.get("parameters") {
                None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
                Some(p @ Value::Object(_)) => p.clone(),
                Some(_) => return bad("function.parameters must be a JSON Schema object"),
            };
            tools.push(Tool { name, parameters });
        }
        let choice = match choice {
            None => ToolChoice::Auto,
            Some(Value::String(s)) => match s.as_str() {
                "none" => ToolChoice::None,
                "auto" => ToolChoice::Auto,
                "required" => ToolChoice::Required,
                _ => {
                    return Err((
                        format!("'tool_choice' {s:?} is not one of \"none\", \"auto\", \"required\" or {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}"),
                        "tool_choice",
                    ))
                }
            },
            Some(Value::Object(c)) => {
                let name = c
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .filter(|_| c.get("type").and_then(Value::as_str) == Some("function"))
                    .ok_or_else(|| {
                        ("'tool_choice' must name a function: {\"type\": \"function\", \"function\": {\"name\": ...}}"
                            .to_string(), "tool_choice")
                    })?;
                if !tools.iter().any(|t| t.name == name) {
                    return Err((format!("'tool_choice' names {name:?}, which is not among 'tools'"), "tool_choice"));
                }
                ToolChoice::Named(name.to_string())
            }
            Some(_) => return Err(("'tool_choice' must be a string or an object".into(), "tool_choice")),
        };
        Ok(Some(ToolRequest { tools, spec, choice, parallel }))
    }

    /// The schema a choice is constrained to: a named function's arguments, or for "required" a list of calls
    /// `[{"name": N, "parameters": {...}}, ...]` (one unless `parallel`), as vLLM constrains them. None for
    /// "auto" and "none".
    pub fn schema(&self) -> Option<Value> {
        match &self.choice {
            ToolChoice::None | ToolChoice::Auto => None,
            ToolChoice::Named(n) => self.tools.iter().find(|t| &t.name == n).map(|t| t.parameters.clone()),
            ToolChoice::Required => {
                let calls: Vec<Value> = self
                    .tools
                    .iter()
                    .map(|t| {
                        json!({"type": "object", "properties": {"name": {"const": t.name}, "parameters": t.parameters},
                               "required": ["name", "parameters"], "additionalProperties": false})
                    })
                    .collect();
                let item = if calls.len() == 1 { calls[0].clone() } else { json!({"anyOf": calls}) };
                let mut s = json!({"type": "array", "items": item, "minItems": 1});
                if !self.parallel {
                    s["maxItems"] = json!(1);
                }
                Some(s)
            }
        }
    }
}

/// A tool-call format a model writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolFormat {
    /// `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, one block a call, after any text (Hermes 2 / 3,
    /// Qwen 2.5, SmolLM3).
    Hermes,
    /// Llama 3.1+: the whole reply is `{"name": ..., "parameters": {...}}` (several joined by `;`), after
    /// `<|python_tag|>` or alone.
    Llama3Json,
    /// Mistral: `[TOOL_CALLS] [{"name": ..., "arguments": {...}}, ...]` after any text.
    Mistral,
}

impl ToolFormat {
    /// The names `--tool-call-parser` takes (vLLM's).
    pub const NAMES: [&'static str; 3] = ["hermes", "llama3_json", "mistral"];

    pub fn from_name(s: &str) -> Option<ToolFormat> {
        match s {
            "hermes" => Some(ToolFormat::Hermes),
            "llama3_json" => Some(ToolFormat::Llama3Json),
            "mistral" => Some(ToolFormat::Mistral),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ToolFormat::Hermes => "hermes",
            ToolFormat::Llama3Json => "llama3_json",
            ToolFormat::Mistral => "mistral",
        }
    }

    /// The format a chat template writes an assistant's tool calls in, if it writes any.
    pub fn detect(template: &str) -> Option<ToolFormat> {
        if template.contains("<tool_call>") {
            Some(ToolFormat::Hermes)
        } else if template.contains("[TOOL_CALLS]") {
            Some(ToolFormat::Mistral)
        } else if template.contains("<|python_tag|>")
            || (template.contains("<|start_header_id|>") && template.contains("\"parameters\": "))
        {
            Some(ToolFormat::Llama3Json)
        } else {
            None
        }
    }

    /// The strings that open a call, which tokenizers may have as special tokens (dropped from the text a
    /// choice shows, so the server puts them back into the text it reads calls from).
    pub fn markers(self) -> &'static [&'static str] {
        match self {
            ToolFormat::Hermes => &["<tool_call>", "</tool_call>"],
            ToolFormat::Llama3Json => &["<|python_tag|>"],
            ToolFormat::Mistral => &["[TOOL_CALLS]"],
        }
    }

    /// Where a choice's text starts its calls (and the marker's length), for the formats that allow text first.
    fn start(self, text: &str) -> Option<usize> {
        match self {
            ToolFormat::Hermes => text.find("<tool_call>"),
            ToolFormat::Mistral => text.find("[TOOL_CALLS]"),
            ToolFormat::Llama3Json => {
                let t = text.trim_start();
                (t.starts_with('{') || t.starts_with("<|python_tag|>")).then_some(0)
            }
        }
    }

    /// A choice's text read in this format: `Some((content before the calls, or None where it is only white
    /// space; the calls as (name, arguments JSON)))` when it holds calls that all parse, None otherwise (the
    /// whole text is then the reply's content, as vLLM's parsers answer).
    pub fn parse(self, text: &str) -> Option<(Option<String>, Vec<RawCall>)> {
        let at = self.start(text)?;
        let head = &text[..at];
        let content = (!head.trim().is_empty()).then(|| head.to_string());
        let calls = match self {
            ToolFormat::Hermes => {
                let mut calls = Vec::new();
                let mut rest = &text[at..];
                while let Some(s) = rest.find("<tool_call>") {
                    let body = &rest[s + "<tool_call>".len()..];
                    let (body, next) = match body.find("</tool_call>") {
                        Some(e) => (&body[..e], &body[e + "</tool_call>".len()..]),
                        None => (body, ""),
                    };
                    calls.push(call_of(&serde_json::from_str::<Value>(body.trim()).ok()?)?);
                    rest = next;
                }
                calls
            }
            ToolFormat::Mistral => {
                let body = text[at + "[TOOL_CALLS]".len()..].trim();
                match serde_json::from_str::<Value>(body).ok()? {
                    Value::Array(a) if !a.is_empty() => a.iter().map(call_of).collect::<Option<Vec<_>>>()?,
                    v @ Value::Object(_) => vec![call_of(&v)?],
                    _ => return None,
                }
            }
            ToolFormat::Llama3Json => {
                let mut rest = text.trim_start();
                rest = rest.strip_prefix("<|python_tag|>").unwrap_or(rest).trim_start();
                let mut calls = Vec::new();
                while !rest.is_empty() {
                    let mut values = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
                    let v = values.next()?.ok()?;
                    calls.push(call_of(&v)?);
                    rest = rest[values.byte_offset()..].trim_start();
                    if let Some(r) = rest.strip_prefix(';') {
                        rest = r.trim_start();
                    }
                }
                calls
            }
        };
        (!calls.is_empty()).then_some((content, calls))
    }
}

/// One call object: `name` and its arguments (`arguments`, or Llama's `parameters`; an object, or a string that
/// holds one), the arguments as compact JSON.
fn call_of(v: &Value) -> Option<RawCall> {
    let o = v.as_object()?;
    let name = o.get("name")?.as_str()?.to_string();
    let args = match o.get("arguments").or_else(|| o.get("parameters")) {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => v,
            _ => return None,
        },
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return None,
    };
    Some((name, args.to_string()))
}

/// The calls of a "required" choice's text (a JSON list of `{"name", "parameters"}`): those complete where the
/// choice was cut short.
pub fn required_calls(text: &str) -> Vec<RawCall> {
    if let Ok(Value::Array(a)) = serde_json::from_str::<Value>(text) {
        return a.iter().filter_map(call_of).collect();
    }
    // Cut short: the list's complete items, found by their depth (the text is the grammar's, so well formed).
    let mut calls = Vec::new();
    let (mut depth, mut in_str, mut esc, mut start) = (0usize, false, false, None);
    for (i, c) in text.char_indices() {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' | '[' => {
                depth += 1;
                if depth == 2 && c == '{' {
                    start = Some(i);
                }
            }
            '}' | ']' => {
                if depth == 2 {
                    if let Some(s) = start.take() {
                        if let Some(call) = serde_json::from_str::<Value>(&text[s..=i]).ok().as_ref().and_then(call_of)
                        {
                            calls.push(call);
                        }
                    }
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
    }
    calls
}

/// A call as a model's text holds it: the function's name and its arguments as JSON text.
pub type RawCall = (String, String);

/// A tool call as responses carry it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

impl ToolCall {
    /// `call_` and 24 letters / digits (OpenAI's shape); Mistral's templates take exactly 9 (vLLM's ids for
    /// them), so a client can send the call back in the history.
    pub fn new(name: String, arguments: String, format: Option<ToolFormat>, seed: u64) -> Self {
        const ABC: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let mut r = crate::util::SplitMix64(seed);
        let mut next = || ABC[(r.next_u64() % ABC.len() as u64) as usize] as char;
        let id = match format {
            Some(ToolFormat::Mistral) => (0..9).map(|_| next()).collect(),
            _ => "call_".chars().chain((0..24).map(|_| next())).collect(),
        };
        ToolCall { id, name, arguments }
    }

    /// The call in a response's `message.tool_calls`, or (with `index`) in a stream chunk's `delta.tool_calls`.
    pub fn to_json(&self, index: Option<usize>) -> Value {
        let mut v =
            json!({"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}});
        if let Some(i) = index {
            v["index"] = json!(i);
        }
        v
    }
}

/// Reads an "auto" choice's text as it streams: passes on the text that is surely content (never a marker's
/// beginning, nor white space alone before any content) and keeps the rest, which [`finish`](Self::finish)
/// reads as calls (or, where they do not parse, gives back as content) — so a stream's deltas add up to what
/// the same choice answers unstreamed.
#[derive(Debug)]
pub struct AutoStream {
    format: ToolFormat,
    /// The choice's text so far.
    text: String,
    /// Bytes of `text` passed on as content.
    sent: usize,
    /// The calls have begun: nothing more is passed on.
    calls: bool,
}

impl AutoStream {
    pub fn new(format: ToolFormat) -> Self {
        AutoStream { format, text: String::new(), sent: 0, calls: false }
    }

    /// Takes the next piece of text; returns the content that can be sent now.
    pub fn push(&mut self, piece: &str) -> String {
        self.text.push_str(piece);
        if self.calls {
            return String::new();
        }
        if let Some(at) = self.format.start(&self.text) {
            self.calls = true;
            return self.take(at);
        }
        // Llama's JSON: only a reply that starts with `{` or the tag is calls; hold white space and a prefix of the tag.
        let keep = match self.format {
            ToolFormat::Llama3Json => {
                let t = self.text.trim_start();
                if t.is_empty() || "<|python_tag|>".starts_with(t) {
                    self.text.len() - self.sent
                } else {
                    0
                }
            }
            f => {
                let marker = f.markers()[0];
                (1..marker.len()).rev().find(|&k| self.text.ends_with(&marker[..k])).unwrap_or(0)
            }
        };
        let end = self.text.len() - keep;
        if self.text[..end].trim().is_empty() {
            return String::new();
        }
        self.take(end)
    }

    fn take(&mut self, end: usize) -> String {
        // Content that is white space alone is not sent (unstreamed, it is no content).
        if end <= self.sent || self.text[..end].trim().is_empty() {
            return String::new();
        }
        let s = self.text[self.sent..end].to_string();
        self.sent = end;
        s
    }

    /// The end of the choice: the content not sent yet and the calls (none where the text holds none that parse).
    pub fn finish(&mut self) -> (String, Vec<RawCall>) {
        match self.format.parse(&self.text) {
            Some((_, calls)) => (String::new(), calls),
            None => {
                let rest = if self.sent == 0 && self.text.trim().is_empty() {
                    // no content at all: the whole text (white space) is the reply, as unstreamed
                    self.text.clone()
                } else {
                    self.text[self.sent..].to_string()
                };
                self.sent = self.text.len();
                (rest, Vec::new())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(s: &str) -> Map<String, Value> {
        serde_json::from_str::<Value>(s).unwrap().as_object().unwrap().clone()
    }

    #[test]
    fn requests() {
        let t = r#""tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},{"type":"function","function":{"name":"now"}}]"#;
        let r = ToolRequest::parse(&obj(&format!("{{{t}}}"))).unwrap().unwrap();
        assert_eq!(r.choice, ToolChoice::Auto);
        assert!(r.parallel);
        assert_eq!(r.tools[1].parameters, json!({"type": "object", "properties": {}}));
        let r = ToolRequest::parse(&obj(&format!(
            r#"{{{t},"tool_choice":{{"type":"function","function":{{"name":"now"}}}},"parallel_tool_calls":false}}"#
        )))
        .unwrap()
        .unwrap();
        assert_eq!(r.choice, ToolChoice::Named("now".into()));
        assert_eq!(r.schema().unwrap(), json!({"type": "object", "properties": {}}));
        let r = ToolRequest::parse(&obj(&format!(r#"{{{t},"tool_choice":"required","parallel_tool_calls":false}}"#)))
            .unwrap()
            .unwrap();
        let s = r.schema().unwrap();
        assert_eq!(s["maxItems"], 1);
        assert_eq!(s["items"]["anyOf"][0]["properties"]["name"]["const"], "get_weather");
        // no tools: nothing, or "none"
        assert_eq!(ToolRequest::parse(&obj(r#"{"tools":[],"tool_choice":"none"}"#)).unwrap(), None);
        for (body, param) in [
            (r#"{"tool_choice":"auto"}"#, "tool_choice"),
            (r#"{"tools":{}}"#, "tools"),
            (r#"{"tools":[{"type":"code_interpreter"}]}"#, "tools"),
            (r#"{"tools":[{"type":"function","function":{"name":"a b"}}]}"#, "tools"),
            (
                r#"{"tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"a"}}]}"#,
                "tools",
            ),
            (r#"{"tools":[{"type":"function","function":{"name":"a","parameters":[]}}]}"#, "tools"),
            (r#"{"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":"any"}"#, "tool_choice"),
            (
                r#"{"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":{"type":"function","function":{"name":"b"}}}"#,
                "tool_choice",
            ),
            (
                r#"{"tools":[{"type":"function","function":{"name":"a"}}],"parallel_tool_calls":1}"#,
                "parallel_tool_calls",
            ),
        ] {
            let e = ToolRequest::parse(&obj(body)).unwrap_err();
            assert_eq!(e.1, param, "{body}: {e:?}");
        }
    }

    #[test]
    fn formats_are_read_from_templates_and_outputs() {
        assert_eq!(ToolFormat::detect("{{ '<tool_call>\\n' }}"), Some(ToolFormat::Hermes));
        assert_eq!(ToolFormat::detect("{{- \"[TOOL_CALLS] [\" }}"), Some(ToolFormat::Mistral));
        assert_eq!(ToolFormat::detect("{{- \"<|python_tag|>\" }}"), Some(ToolFormat::Llama3Json));
        assert_eq!(ToolFormat::detect("{{ '<|im_start|>' }}"), None);
        let h = ToolFormat::Hermes;
        let out = "Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Zürich\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"now\", \"arguments\": \"{}\"}\n</tool_call>";
        let (content, calls) = h.parse(out).unwrap();
        assert_eq!(content.as_deref(), Some("Let me look.\n"));
        assert_eq!(calls, [("get_weather".into(), r#"{"city":"Zürich"}"#.into()), ("now".into(), "{}".into())]);
        assert_eq!(h.parse("<tool_call>{\"name\": \"now\"}").unwrap(), (None, vec![("now".into(), "{}".into())]));
        assert_eq!(h.parse("no calls"), None);
        assert_eq!(h.parse("<tool_call>{\"name\": \"now\", \"arguments\": {</tool_call>"), None);
        let l = ToolFormat::Llama3Json;
        let (c, calls) = l
            .parse("<|python_tag|>{\"name\": \"a\", \"parameters\": {\"x\": 1}}; {\"name\": \"b\", \"parameters\": {}}")
            .unwrap();
        assert_eq!((c, calls.len()), (None, 2));
        assert_eq!(calls[0], ("a".into(), r#"{"x":1}"#.into()));
        assert_eq!(l.parse(" {\"name\": \"a\", \"arguments\": {}}\n").unwrap().1, [("a".into(), "{}".into())]);
        assert_eq!(l.parse("The answer is {\"name\": 1}"), None);
        assert_eq!(l.parse("{\"name\": \"a\"} and more"), None);
        assert_eq!(l.parse("<|python_tag|>brave_search.call(query=\"x\")"), None);
        let m = ToolFormat::Mistral;
        assert_eq!(
            m.parse("[TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {\"y\": [1, 2]}}]").unwrap(),
            (None, vec![("a".into(), r#"{"y":[1,2]}"#.into())])
        );
        assert_eq!(m.parse("[TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {\"y\": ["), None);
    }

    #[test]
    fn required_choices_cut_short_keep_their_complete_calls() {
        let t = r#"[{"name": "a", "parameters": {"s": "}]\"{"}}, {"name": "b", "parameters": {"#;
        assert_eq!(required_calls(t), [("a".into(), r#"{"s":"}]\"{"}"#.into())]);
        assert_eq!(required_calls(r#"[{"name":"b","parameters":{}}]"#), [("b".into(), "{}".into())]);
    }

    #[test]
    fn ids() {
        let a = ToolCall::new("f".into(), "{}".into(), None, 1);
        let b = ToolCall::new("f".into(), "{}".into(), None, 2);
        assert!(a.id.starts_with("call_") && a.id.len() == 29 && a.id != b.id);
        let m = ToolCall::new("f".into(), "{}".into(), Some(ToolFormat::Mistral), 1);
        assert!(m.id.len() == 9 && m.id.bytes().all(|c| c.is_ascii_alphanumeric()));
    }

    /// Streamed in any pieces, an "auto" choice's content deltas add up to its unstreamed content and its calls are
    /// the unstreamed calls; no delta holds a marker's beginning.
    #[test]
    fn auto_streams_add_up_to_the_unstreamed_reply() {
        let cases = [
            (ToolFormat::Hermes, "Sure.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {\"q\": \"<t\"}}\n</tool_call>"),
            (ToolFormat::Hermes, "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>"),
            (ToolFormat::Hermes, "  \n<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>"),
            (ToolFormat::Hermes, "a < b <tool_ca and <tool_call>{broken"),
            (ToolFormat::Hermes, "plain text, no call <tool"),
            (ToolFormat::Hermes, "   "),
            (ToolFormat::Llama3Json, "  {\"name\": \"a\", \"parameters\": {\"x\": \"y\"}}"),
            (ToolFormat::Llama3Json, "<|python_tag|>{\"name\": \"a\", \"parameters\": {}}"),
            (ToolFormat::Llama3Json, "<|python_ta but not"),
            (ToolFormat::Llama3Json, "Hello {\"name\": \"a\", \"parameters\": {}}"),
            (ToolFormat::Llama3Json, "{not json"),
            (ToolFormat::Mistral, "Calling.[TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {}}]"),
            (ToolFormat::Mistral, "[TOOL_CALL"),
        ];
        let mut seed = 7u64;
        for (f, text) in cases {
            let (want_content, want_calls) = match f.parse(text) {
                Some((c, calls)) => (c.unwrap_or_default(), calls),
                None => (text.to_string(), Vec::new()),
            };
            for _ in 0..50 {
                let mut s = AutoStream::new(f);
                let mut got = String::new();
                let chars: Vec<char> = text.chars().collect();
                let mut i = 0;
                while i < chars.len() {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let k = 1 + (seed >> 60) as usize % 4;
                    let piece: String = chars[i..(i + k).min(chars.len())].iter().collect();
                    i += k;
                    let d = s.push(&piece);
                    assert!(!(d.contains("<tool_call>") || d.contains("[TOOL_CALLS]")), "{f:?} {text:?}: {d:?}");
                    got.push_str(&d);
                }
                let (rest, calls) = s.finish();
                got.push_str(&rest);
                assert_eq!((got.as_str(), &calls), (want_content.as_str(), &want_calls), "{f:?} {text:?}");
            }
        }
    }
}
