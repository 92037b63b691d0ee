//! The OpenAI request and response shapes: parsing with precise 4xx errors, and the JSON bodies
//! and stream chunks the server sends. No I/O here.
use super::chat::ChatMessage;
use super::tools::{ToolCall, ToolChoice, ToolRequest};
use crate::backend::paged::MAX_TOP_LOGPROBS;
use crate::backend::text_format::{FormatKind, TextFormat};
use axum::http::StatusCode;
use serde_json::{json, Map, Value};

/// Most stop strings a request may give.
pub const MAX_STOP_STRINGS: usize = 16;
/// `max_tokens` default of /v1/completions (OpenAI's legacy default).
pub const DEFAULT_COMPLETION_MAX_TOKENS: usize = 16;
/// Most `logit_bias` entries a request may give.
pub const MAX_LOGIT_BIAS: usize = 1024;
/// Most choices (prompts × `n`) one request may ask for.
pub const MAX_CHOICES: usize = 128;

/// An OpenAI-style error: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

impl ApiError {
    pub fn invalid(message: impl Into<String>, param: Option<&str>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: param.map(str::to_string),
            code: None,
        }
    }
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }
    pub fn status(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), kind, param: None, code: None }
    }
    pub fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}})
    }
}

/// What to generate from.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptInput {
    Text(String),
    Tokens(Vec<u32>),
    Chat(Vec<ChatMessage>),
}

/// A validated completion or chat request.
#[derive(Debug, Clone, PartialEq)]
pub struct GenRequest {
    pub model: Option<String>,
    /// One prompt (chat, or a completion), or several (a completion's list of strings or token lists): each gets
    /// `n` choices, indexed prompt by prompt (choice `i * n + j`: prompt i's j-th), as OpenAI numbers them.
    pub prompts: Vec<PromptInput>,
    /// Choices per prompt.
    pub n: usize,
    /// None: up to the context for chat, [`DEFAULT_COMPLETION_MAX_TOKENS`] for completions.
    pub max_tokens: Option<usize>,
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: usize,
    pub seed: Option<u64>,
    pub stop: Vec<String>,
    pub stream: bool,
    pub include_usage: bool,
    /// vLLM's extension: keep going past stop tokens (benchmarks use it for exact lengths).
    pub ignore_eos: bool,
    /// vLLM's extension: token ids that end a choice (beside the model's stop tokens).
    pub stop_token_ids: Vec<u32>,
    /// /v1/completions: each choice's text starts with its prompt.
    pub echo: bool,
    /// `Some(n)`: each generated token's log-probability and the `n` most likely alternatives'
    /// (completions: `logprobs: n`, with `echo` the prompt's tokens' too; chat: `logprobs: true` with `top_logprobs: n`).
    pub logprobs: Option<usize>,
    /// (token id, bias) sorted by id: added to the logits before sampling.
    pub logit_bias: Vec<(u32, f32)>,
    /// OpenAI's penalties over the tokens generated so far, in [-2, 2] (0: off).
    pub presence_penalty: f32,
    pub frequency_penalty: f32,
    /// vLLM's `repetition_penalty` (HF's formula over the prompt's and the generated tokens; 1: off).
    pub repetition_penalty: f32,
    /// vLLM's `min_tokens`: the end tokens are masked until this many tokens are generated.
    pub min_tokens: usize,
    /// vLLM's `min_p` (0: off): tokens below `min_p` × the most likely one's probability are not drawn.
    pub min_p: f32,
    /// `response_format` json_object / json_schema (or vLLM's `guided_json`): what the choice's text must be.
    pub json: Option<JsonFormat>,
    /// Chat's function calling (`tools`, `tool_choice`, `parallel_tool_calls`); "required" and a named function
    /// also set `json` (the schema the choice is constrained to).
    pub tools: Option<ToolRequest>,
}

/// A constrained choice's text (backend::json_mode).
#[derive(Debug, Clone)]
pub enum JsonFormat {
    /// vLLM's `guided_choice`: exactly one of these strings.
    Choice(Vec<String>),
    /// `{"type": "json_object"}`: one JSON object.
    Object,
    /// vLLM's `guided_regex` (a text the pattern matches whole), `guided_grammar` (a sentence of the GBNF grammar),
    /// `{"type": "json_schema", "json_schema": {"schema": S}}` or `guided_json: S` (an instance of S), compiled (the
    /// server keeps the constraints of recent ones by their [`TextFormat::key`]).
    Text(TextFormat),
}

impl PartialEq for JsonFormat {
    fn eq(&self, o: &Self) -> bool {
        match (self, o) {
            (JsonFormat::Object, JsonFormat::Object) => true,
            (JsonFormat::Choice(a), JsonFormat::Choice(b)) => a == b,
            (JsonFormat::Text(a), JsonFormat::Text(b)) => a.key() == b.key(),
            _ => false,
        }
    }
}

/// vLLM's structured outputs beside `response_format` (`json`, its format if any): `structured_outputs` {"json" |
/// "regex" | "choice" | "grammar" | "json_object"} (vLLM 0.12 on) or the older `guided_json` / `guided_regex` /
/// `guided_choice` / `guided_grammar`. At most one of them gives the text's format; what cannot be enforced (a
/// structural tag, a whitespace pattern, an unknown key) is a 400, never ignored.
fn structured_format(o: &Map<String, Value>, json: Option<JsonFormat>) -> Result<Option<JsonFormat>, ApiError> {
    let mut given: Vec<(String, JsonFormat)> = json.into_iter().map(|f| ("response_format".to_string(), f)).collect();
    for (k, kind) in [
        ("guided_json", Structured::Json),
        ("guided_regex", Structured::Regex),
        ("guided_choice", Structured::Choice),
        ("guided_grammar", Structured::Grammar),
    ] {
        if let Some(v) = field(o, k) {
            given.push((k.to_string(), structured_one(kind, v, k)?));
        }
    }
    if let Some(so) = object(o, "structured_outputs")? {
        for (k, v) in so {
            let param = format!("structured_outputs.{k}");
            let bad = |m: String| ApiError::invalid(m, Some(&param));
            if let Some(kind) = Structured::of(k) {
                if !v.is_null() {
                    given.push((param.clone(), structured_one(kind, v, &param)?));
                }
                continue;
            }
            match (k.as_str(), v) {
                (_, Value::Null) => {}
                ("json_object", Value::Bool(true)) => given.push((param.clone(), JsonFormat::Object)),
                // Settings of vLLM's backends that change nothing here: a schema's object takes only its
                // `properties` unless `additionalProperties` says otherwise, and there is one backend.
                ("json_object" | "disable_additional_properties" | "disable_fallback", Value::Bool(_)) => {}
                ("disable_any_whitespace", Value::Bool(false)) => {}
                ("disable_any_whitespace", Value::Bool(true)) => {
                    return Err(bad(format!(
                    "'{param}' true is not supported (JSON is written with the whitespace layouts the model chooses)"
                )))
                }
                ("structural_tag" | "whitespace_pattern", _) => {
                    return Err(bad(format!(
                        "'{param}' is not supported (json, regex, choice, grammar and json_object are)"
                    )))
                }
                (
                    "json_object" | "disable_additional_properties" | "disable_fallback" | "disable_any_whitespace",
                    v,
                ) => return Err(bad(format!("'{param}' must be a boolean, got {}", type_name(v)))),
                _ => {
                    return Err(bad(format!(
                    "'{param}' is not a structured output (json, regex, choice, json_object, grammar, structural_tag, \
                         whitespace_pattern, disable_any_whitespace, disable_additional_properties, disable_fallback)"
                )))
                }
            }
        }
    }
    match given.len() {
        0 | 1 => Ok(given.pop().map(|g| g.1)),
        _ => {
            let names: Vec<String> = given.iter().map(|g| format!("'{}'", g.0)).collect();
            Err(ApiError::invalid(
                format!("give one format for the text, not {}", names.join(" and ")),
                Some(&given[1].0),
            ))
        }
    }
}

/// The structured outputs that give a text's format (`structured_outputs`' keys, `guided_*`'s suffixes).
#[derive(Clone, Copy)]
enum Structured {
    /// A JSON schema, or its JSON text.
    Json,
    /// A regular expression the whole text matches.
    Regex,
    /// Strings, one of which the text is.
    Choice,
    /// A GBNF grammar (llama.cpp's, xgrammar's EBNF) whose sentence the text is.
    Grammar,
}

impl Structured {
    fn of(key: &str) -> Option<Structured> {
        match key {
            "json" => Some(Structured::Json),
            "regex" => Some(Structured::Regex),
            "choice" => Some(Structured::Choice),
            "grammar" => Some(Structured::Grammar),
            _ => None,
        }
    }
}

/// One structured output of `kind` given as `param`.
fn structured_one(kind: Structured, v: &Value, param: &str) -> Result<JsonFormat, ApiError> {
    let bad = |m: String| ApiError::invalid(m, Some(param));
    match kind {
        Structured::Json => {
            let schema = match v {
                Value::String(t) => {
                    serde_json::from_str(t).map_err(|e| bad(format!("'{param}' is not a JSON schema: {e}")))?
                }
                v => v.clone(),
            };
            schema_format(&schema, param)
        }
        Structured::Regex => {
            let p = v.as_str().filter(|p| !p.is_empty()).ok_or_else(|| {
                bad(format!("'{param}' must be a non-empty string (a regular expression the whole text matches)"))
            })?;
            Ok(JsonFormat::Text(TextFormat::compile(FormatKind::Regex, p).map_err(|e| bad(format!("'{param}' {e}")))?))
        }
        Structured::Choice => {
            let list = v
                .as_array()
                .filter(|a| (1..=MAX_CHOICE_STRINGS).contains(&a.len()))
                .and_then(|a| a.iter().map(|x| x.as_str().map(str::to_string)).collect::<Option<Vec<String>>>())
                .ok_or_else(|| bad(format!("'{param}' must be a list of 1 to {MAX_CHOICE_STRINGS} strings")))?;
            if list.iter().any(|s| s.is_empty() || s.len() > MAX_CHOICE_BYTES) {
                return Err(bad(format!("'{param}' strings must have 1 to {MAX_CHOICE_BYTES} bytes")));
            }
            Ok(JsonFormat::Choice(list))
        }
        Structured::Grammar => {
            let g = v.as_str().filter(|g| !g.trim().is_empty()).ok_or_else(|| {
                bad(format!("'{param}' must be a non-empty string (a GBNF grammar whose 'root' rule the text is)"))
            })?;
            Ok(JsonFormat::Text(
                TextFormat::compile(FormatKind::Grammar, g).map_err(|e| bad(format!("'{param}' {e}")))?,
            ))
        }
    }
}

/// A schema parameter compiled, or a 400 naming `param` and what in the schema cannot be enforced.
fn schema_format(schema: &Value, param: &str) -> Result<JsonFormat, ApiError> {
    let format = TextFormat::schema(schema).map_err(|e| ApiError::invalid(format!("'{param}': {e}"), Some(param)))?;
    Ok(JsonFormat::Text(format))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads a present, non-null field.
fn field<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    o.get(k).filter(|v| !v.is_null())
}

fn number(o: &Map<String, Value>, k: &str) -> Result<Option<f64>, ApiError> {
    match field(o, k) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(ApiError::invalid(format!("'{k}' must be a finite number"), Some(k))),
        },
        Some(v) => Err(ApiError::invalid(format!("'{k}' must be a number, got {}", type_name(v)), Some(k))),
    }
}

fn integer(o: &Map<String, Value>, k: &str) -> Result<Option<i64>, ApiError> {
    match field(o, k) {
        None => Ok(None),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Ok(Some(i)),
            (None, Some(u), _) => Ok(Some(u.min(i64::MAX as u64) as i64)),
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 9e15 => Ok(Some(f as i64)),
            _ => Err(ApiError::invalid(format!("'{k}' must be an integer, got {n}"), Some(k))),
        },
        Some(v) => Err(ApiError::invalid(format!("'{k}' must be an integer, got {}", type_name(v)), Some(k))),
    }
}

fn boolean(o: &Map<String, Value>, k: &str) -> Result<Option<bool>, ApiError> {
    match field(o, k) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(ApiError::invalid(format!("'{k}' must be a boolean, got {}", type_name(v)), Some(k))),
    }
}

fn object<'a>(o: &'a Map<String, Value>, k: &str) -> Result<Option<&'a Map<String, Value>>, ApiError> {
    match field(o, k) {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(v) => Err(ApiError::invalid(format!("'{k}' must be an object, got {}", type_name(v)), Some(k))),
    }
}

/// Parses a request body (bytes) into a JSON object.
pub fn parse_body(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(format!("the request body is not valid JSON: {e}"), None).with_code("invalid_json")
    })?;
    match v {
        Value::Object(o) => Ok(o),
        other => {
            Err(ApiError::invalid(format!("the request body must be a JSON object, got {}", type_name(&other)), None))
        }
    }
}

/// The optional `model` field.
fn model_field(o: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match field(o, "model") {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(ApiError::invalid(format!("'model' must be a string, got {}", type_name(v)), Some("model"))),
    }
}

/// Most strings of a `guided_choice`, and the longest one.
pub const MAX_CHOICE_STRINGS: usize = 256;
pub const MAX_CHOICE_BYTES: usize = 1024;

/// Most `stop_token_ids` a request may give.
pub const MAX_STOP_TOKEN_IDS: usize = 64;

/// Sampling and decoding parameters that vLLM's server takes and this one does not implement, each with the value
/// that leaves decoding as it is (`None`: no such value): a client sending that value (as some send every default)
/// is served, any other is a 400 naming the parameter — never text decoded without what the client asked for.
const UNSUPPORTED_SAMPLING: [(&str, Neutral); 8] = [
    ("length_penalty", Neutral::Num(1.0)),
    ("use_beam_search", Neutral::Bool(false)),
    ("include_stop_str_in_output", Neutral::Bool(false)),
    ("skip_special_tokens", Neutral::Bool(true)),
    ("spaces_between_special_tokens", Neutral::Bool(true)),
    ("prompt_logprobs", Neutral::None),
    ("truncate_prompt_tokens", Neutral::None),
    ("guided_whitespace_pattern", Neutral::None),
];

/// The value of an unsupported parameter that changes nothing.
enum Neutral {
    Num(f64),
    Bool(bool),
    None,
}

fn refuse_unsupported_sampling(o: &Map<String, Value>) -> Result<(), ApiError> {
    for (k, neutral) in &UNSUPPORTED_SAMPLING {
        let Some(v) = field(o, k) else { continue };
        let same = match neutral {
            Neutral::Num(n) => v.as_f64() == Some(*n),
            Neutral::Bool(b) => v.as_bool() == Some(*b),
            Neutral::None => false,
        };
        if !same {
            return Err(ApiError::invalid(format!("'{k}' is not supported by this server (got {v})"), Some(k)));
        }
    }
    Ok(())
}

/// Settings shared by completions and chat.
fn parse_common(
    o: &Map<String, Value>,
    prompts: Vec<PromptInput>,
    max_tokens_keys: &[&str],
) -> Result<GenRequest, ApiError> {
    let model = model_field(o)?;
    let echo = boolean(o, "echo")?.unwrap_or(false);
    let mut max_tokens = None;
    for k in max_tokens_keys {
        if let Some(m) = integer(o, k)? {
            // 0 with echo: the prompt alone (with logprobs, its scores), as legacy completions allow
            if m < 0 || (m == 0 && !echo) {
                return Err(ApiError::invalid(
                    format!("'{k}' must be at least 1 (0 only with 'echo': the prompt alone), got {m}"),
                    Some(k),
                ));
            }
            max_tokens = Some(m as usize);
        }
    }
    let temperature = number(o, "temperature")?.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::invalid(
            format!("'temperature' must be in [0, 2], got {temperature}"),
            Some("temperature"),
        ));
    }
    let top_p = number(o, "top_p")?.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::invalid(format!("'top_p' must be in (0, 1], got {top_p}"), Some("top_p")));
    }
    let top_k = match integer(o, "top_k")? {
        None | Some(-1) | Some(0) => 0,
        Some(k) if k > 0 => k as usize,
        Some(k) => {
            return Err(ApiError::invalid(format!("'top_k' must be -1 (off) or positive, got {k}"), Some("top_k")))
        }
    };
    let seed = integer(o, "seed")?.map(|s| s as u64);
    let stop = match field(o, "stop") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => {
            let mut v = Vec::new();
            for x in a {
                match x {
                    Value::String(s) => v.push(s.clone()),
                    other => {
                        return Err(ApiError::invalid(
                            format!("'stop' entries must be strings, got {}", type_name(other)),
                            Some("stop"),
                        ))
                    }
                }
            }
            v
        }
        Some(v) => {
            return Err(ApiError::invalid(
                format!("'stop' must be a string or a list of strings, got {}", type_name(v)),
                Some("stop"),
            ))
        }
    };
    if stop.len() > MAX_STOP_STRINGS {
        return Err(ApiError::invalid(
            format!("at most {MAX_STOP_STRINGS} stop strings, got {}", stop.len()),
            Some("stop"),
        ));
    }
    if stop.iter().any(|s| s.is_empty()) {
        return Err(ApiError::invalid("stop strings must not be empty", Some("stop")));
    }
    let n = match integer(o, "n")? {
        None => 1,
        Some(n) if n >= 1 && (n as usize).saturating_mul(prompts.len()) <= MAX_CHOICES => n as usize,
        Some(n) if n >= 1 => {
            return Err(ApiError::invalid(
                format!("at most {MAX_CHOICES} choices a request: {} prompt(s) × n = {n} is too many", prompts.len()),
                Some("n"),
            ))
        }
        Some(n) => return Err(ApiError::invalid(format!("'n' must be at least 1, got {n}"), Some("n"))),
    };
    // best_of > n ranks candidates by their total log probability and keeps the best n: this server does not rank.
    if let Some(b) = integer(o, "best_of")? {
        if b != n as i64 && b != 1 {
            return Err(ApiError::invalid(
                format!("'best_of' must equal n ({n}): choosing the best of more is not supported, got {b}"),
                Some("best_of"),
            ));
        }
    }
    // logit_bias: {"token id": bias in [-100, 100]}
    let mut logit_bias = Vec::new();
    if let Some(m) = object(o, "logit_bias")? {
        if m.len() > MAX_LOGIT_BIAS {
            return Err(ApiError::invalid(
                format!("at most {MAX_LOGIT_BIAS} 'logit_bias' entries, got {}", m.len()),
                Some("logit_bias"),
            ));
        }
        for (k, v) in m {
            let id = k.trim().parse::<u32>().map_err(|_| {
                ApiError::invalid(format!("'logit_bias' keys must be token ids, got {k:?}"), Some("logit_bias"))
            })?;
            let b = v.as_f64().filter(|b| (-100.0..=100.0).contains(b)).ok_or_else(|| {
                ApiError::invalid(
                    format!("'logit_bias' values must be numbers in [-100, 100], got {v}"),
                    Some("logit_bias"),
                )
            })?;
            logit_bias.push((id, b as f32));
        }
        logit_bias.sort_by_key(|x| x.0);
    }
    let mut penalties = [0f32; 2];
    for (k, out) in ["presence_penalty", "frequency_penalty"].into_iter().zip(&mut penalties) {
        if let Some(x) = number(o, k)? {
            if !(-2.0..=2.0).contains(&x) {
                return Err(ApiError::invalid(format!("'{k}' must be in [-2, 2], got {x}"), Some(k)));
            }
            *out = x as f32;
        }
    }
    // vLLM's repetition_penalty (> 0; 1 is off), min_p in [0, 1], min_tokens (at most max_tokens).
    let repetition_penalty = match number(o, "repetition_penalty")? {
        None => 1.0,
        Some(r) if r > 0.0 && r <= 10.0 => r as f32,
        Some(r) => {
            return Err(ApiError::invalid(
                format!("'repetition_penalty' must be in (0, 10] (1: off), got {r}"),
                Some("repetition_penalty"),
            ))
        }
    };
    let min_p = match number(o, "min_p")? {
        None => 0.0,
        Some(p) if (0.0..=1.0).contains(&p) => p as f32,
        Some(p) => return Err(ApiError::invalid(format!("'min_p' must be in [0, 1], got {p}"), Some("min_p"))),
    };
    let min_tokens = match integer(o, "min_tokens")? {
        None => 0,
        Some(m) if m < 0 => {
            return Err(ApiError::invalid(format!("'min_tokens' must be at least 0, got {m}"), Some("min_tokens")))
        }
        Some(m) if max_tokens.is_some_and(|x| m as usize > x) => {
            return Err(ApiError::invalid(
                format!("'min_tokens' ({m}) must not exceed 'max_tokens' ({})", max_tokens.unwrap_or_default()),
                Some("min_tokens"),
            ))
        }
        Some(m) => m as usize,
    };
    // JSON mode and structured outputs: decoding constrained to one JSON object, or to an instance of a JSON
    // Schema (backend::json_mode); a schema with a keyword that cannot be enforced is a 400, never ignored.
    let mut json = None;
    if let Some(f) = object(o, "response_format")? {
        match f.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some("json_object") => json = Some(JsonFormat::Object),
            Some("json_schema") => {
                let schema =
                    f.get("json_schema").and_then(Value::as_object).and_then(|j| j.get("schema")).ok_or_else(|| {
                        ApiError::invalid(
                            "'response_format' json_schema needs {\"json_schema\": {\"name\": ..., \"schema\": {...}}}",
                            Some("response_format"),
                        )
                    })?;
                json = Some(schema_format(schema, "response_format")?);
            }
            t => {
                let only = "\"text\", \"json_object\" and \"json_schema\"";
                let t = t.unwrap_or("(none)");
                return Err(ApiError::invalid(
                    format!("'response_format' type {t:?} is not supported (only {only})"),
                    Some("response_format"),
                ));
            }
        }
    }
    let json = structured_format(o, json)?;
    // Legacy function calling (`functions`, `function_call`): refused, never answered with free text; "none"
    // asks for no call. `tools` are chat's (parse_chat).
    if field(o, "functions").is_some_and(|t| t.as_array().is_none_or(|a| !a.is_empty())) {
        return Err(ApiError::invalid(
            "'functions' (legacy function calling) is not supported; declare them as 'tools'",
            Some("functions"),
        ));
    }
    if field(o, "function_call").is_some_and(|c| c.as_str() != Some("none")) {
        return Err(ApiError::invalid(
            "'function_call' (legacy function calling) is not supported; use 'tools' and 'tool_choice'",
            Some("function_call"),
        ));
    }
    let stream = boolean(o, "stream")?.unwrap_or(false);
    let include_usage = match object(o, "stream_options")? {
        None => false,
        Some(_) if !stream => {
            return Err(ApiError::invalid(
                "'stream_options' is only allowed when 'stream' is true",
                Some("stream_options"),
            ))
        }
        Some(so) => boolean(so, "include_usage")?.unwrap_or(false),
    };
    let ignore_eos = boolean(o, "ignore_eos")?.unwrap_or(false);
    if json.is_some() {
        refuse_past_the_end(ignore_eos, min_tokens, "a JSON 'response_format' or structured outputs")?;
    }
    // vLLM's extension: token ids that end a choice as the model's stop tokens do (finish_reason "stop"), also
    // with ignore_eos; checked against the vocabulary by the server.
    let stop_token_ids = match field(o, "stop_token_ids") {
        None => Vec::new(),
        Some(Value::Array(a)) if a.len() <= MAX_STOP_TOKEN_IDS => a
            .iter()
            .map(|x| x.as_u64().filter(|&t| t <= u32::MAX as u64).map(|t| t as u32))
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(|| ApiError::invalid("'stop_token_ids' must be a list of token ids", Some("stop_token_ids")))?,
        Some(Value::Array(a)) => {
            return Err(ApiError::invalid(
                format!("at most {MAX_STOP_TOKEN_IDS} 'stop_token_ids', got {}", a.len()),
                Some("stop_token_ids"),
            ))
        }
        Some(v) => {
            return Err(ApiError::invalid(
                format!("'stop_token_ids' must be a list of token ids, got {}", type_name(v)),
                Some("stop_token_ids"),
            ))
        }
    };
    refuse_unsupported_sampling(o)?;
    Ok(GenRequest {
        model,
        prompts,
        n,
        max_tokens,
        temperature: temperature as f32,
        top_p: top_p as f32,
        top_k,
        seed,
        stop,
        stream,
        include_usage,
        ignore_eos,
        stop_token_ids,
        echo,
        logprobs: None,
        logit_bias,
        presence_penalty: penalties[0],
        frequency_penalty: penalties[1],
        repetition_penalty,
        min_tokens,
        min_p,
        json,
        tools: None,
    })
}

/// A constrained choice (`constrained` names what constrains it) ends when its text is complete: `ignore_eos` and
/// `min_tokens`, which would keep it going, are a 400 naming the parameter.
fn refuse_past_the_end(ignore_eos: bool, min_tokens: usize, constrained: &str) -> Result<(), ApiError> {
    let Some(k) =
        [(ignore_eos, "ignore_eos"), (min_tokens > 0, "min_tokens")].into_iter().find_map(|(on, k)| on.then_some(k))
    else {
        return Ok(());
    };
    Err(ApiError::invalid(
        format!("'{k}' cannot be combined with {constrained}, which ends the choice when its text is complete"),
        Some(k),
    ))
}

/// A count of alternatives, 0 ..= [`MAX_TOP_LOGPROBS`].
fn top_count(o: &Map<String, Value>, k: &str) -> Result<Option<usize>, ApiError> {
    match integer(o, k)? {
        None => Ok(None),
        Some(n) if (0..=MAX_TOP_LOGPROBS as i64).contains(&n) => Ok(Some(n as usize)),
        Some(n) => Err(ApiError::invalid(format!("'{k}' must be between 0 and {MAX_TOP_LOGPROBS}, got {n}"), Some(k))),
    }
}

/// `POST /v1/completions`.
pub fn parse_completion(o: &Map<String, Value>) -> Result<GenRequest, ApiError> {
    let bad = |m: String| ApiError::invalid(m, Some("prompt"));
    let ids = |a: &[Value]| -> Result<Vec<u32>, ApiError> {
        a.iter()
            .map(|x| x.as_u64().filter(|&t| t <= u32::MAX as u64).map(|t| t as u32))
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(|| bad("token-id prompts must be lists of non-negative integers".into()))
    };
    let prompts = match o.get("prompt") {
        None | Some(Value::Null) => return Err(bad("'prompt' is required".into())),
        Some(Value::String(s)) => vec![PromptInput::Text(s.clone())],
        Some(Value::Array(a)) if a.is_empty() => return Err(bad("'prompt' is empty".into())),
        Some(Value::Array(a)) if a.iter().all(Value::is_number) => vec![PromptInput::Tokens(ids(a)?)],
        // a batch: a list of strings or a list of token lists
        Some(Value::Array(a)) if a.len() > MAX_CHOICES => {
            return Err(bad(format!("at most {MAX_CHOICES} prompts a request, got {}", a.len())))
        }
        Some(Value::Array(a)) => a
            .iter()
            .map(|p| match p {
                Value::String(s) => Ok(PromptInput::Text(s.clone())),
                Value::Array(t) if t.is_empty() => Err(bad("a token-list prompt is empty".into())),
                Value::Array(t) => Ok(PromptInput::Tokens(ids(t)?)),
                v => Err(bad(format!("'prompt' entries must be strings or token lists, got {}", type_name(v)))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(v) => return Err(bad(format!("'prompt' must be a string or a token list, got {}", type_name(v)))),
    };
    if matches!(field(o, "suffix"), Some(Value::String(s)) if !s.is_empty()) {
        return Err(ApiError::invalid("'suffix' is not supported", Some("suffix")));
    }
    // Function calling is chat's: tools or a tool choice here are refused; the values that ask for nothing (no
    // tools, "none", either parallel_tool_calls) are served, as before tools existed.
    if field(o, "tools").is_some_and(|t| t.as_array().is_none_or(|a| !a.is_empty())) {
        return Err(ApiError::invalid("'tools' is a /v1/chat/completions parameter", Some("tools")));
    }
    if field(o, "tool_choice").is_some_and(|c| c.as_str() != Some("none")) {
        return Err(ApiError::invalid("'tool_choice' is a /v1/chat/completions parameter", Some("tool_choice")));
    }
    boolean(o, "parallel_tool_calls")?;
    let mut r = parse_common(o, prompts, &["max_tokens"])?;
    // Legacy completions: `logprobs` is the number of alternatives (the chosen token's always comes too).
    r.logprobs = match field(o, "logprobs") {
        Some(Value::Bool(false)) => None,
        _ => top_count(o, "logprobs")?,
    };
    Ok(r)
}

/// A chat request's `messages`: roles and text contents (`developer` read as `system`), assistant turns' tool calls
/// (their arguments as the objects templates read) and `tool` turns' answers; legacy function calls refused.
fn parse_messages(o: &Map<String, Value>) -> Result<Vec<ChatMessage>, ApiError> {
    let bad = |m: String| ApiError::invalid(m, Some("messages"));
    let msgs = match o.get("messages") {
        None | Some(Value::Null) => return Err(bad("'messages' is required".into())),
        Some(Value::Array(a)) if a.is_empty() => return Err(bad("'messages' must not be empty".into())),
        Some(Value::Array(a)) => a,
        Some(v) => return Err(bad(format!("'messages' must be an array, got {}", type_name(v)))),
    };
    let mut out = Vec::with_capacity(msgs.len());
    for (i, m) in msgs.iter().enumerate() {
        let Value::Object(m) = m else {
            return Err(bad(format!("messages[{i}] must be an object")));
        };
        if m.get("function_call").is_some_and(|t| !t.is_null()) {
            return Err(bad(format!(
                "messages[{i}] carries a legacy 'function_call'; send tool calls as 'tool_calls'"
            )));
        }
        let role = match m.get("role") {
            Some(Value::String(r)) if ["system", "developer", "user", "assistant", "tool"].contains(&r.as_str()) => {
                if r == "developer" {
                    "system".to_string()
                } else {
                    r.clone()
                }
            }
            Some(Value::String(r)) => {
                return Err(bad(format!(
                    "messages[{i}].role {r:?} is not one of system, developer, user, assistant, tool"
                )))
            }
            _ => return Err(bad(format!("messages[{i}].role is required (a string)"))),
        };
        // an empty `tool_calls` list (as vLLM's responses carry, which clients send back in the history) has no call
        let tool_calls = match m.get("tool_calls") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) if a.is_empty() => None,
            Some(Value::Array(a)) if role == "assistant" => {
                Some(a.iter().enumerate().map(|(j, c)| history_call(c, i, j)).collect::<Result<Vec<_>, _>>()?)
            }
            Some(Value::Array(_)) => {
                return Err(bad(format!("messages[{i}]: only assistant turns carry 'tool_calls'")))
            }
            Some(v) => return Err(bad(format!("messages[{i}].tool_calls must be a list, got {}", type_name(v)))),
        };
        let content = match m.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => {
                let mut s = String::new();
                for p in parts {
                    match (p.get("type").and_then(Value::as_str), p.get("text").and_then(Value::as_str)) {
                        (Some("text"), Some(t)) => s.push_str(t),
                        _ => return Err(bad(format!("messages[{i}].content: only text parts are supported"))),
                    }
                }
                s
            }
            // An assistant turn may have no content (one that only calls tools has `content: null`): the template
            // gets "", as vLLM gives it (templates that know no tool calls still render the turn).
            Some(Value::Null) | None if role == "assistant" => String::new(),
            _ => return Err(bad(format!("messages[{i}].content is required (a string or text parts)"))),
        };
        let text = |k: &str| match m.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(n)) => Ok(Some(n.clone())),
            Some(v) => Err(bad(format!("messages[{i}].{k} must be a string, got {}", type_name(v)))),
        };
        // OpenAI's participant name, which some templates print (`message.name`)
        let name = text("name")?;
        let tool_call_id = if role == "tool" { text("tool_call_id")? } else { None };
        out.push(ChatMessage { role, content, name, tool_calls, tool_call_id });
    }
    Ok(out)
}

/// A tool call of an assistant turn in the history, as templates read it: `{"id", "type": "function", "function":
/// {"name", "arguments"}}` with the arguments' JSON text (what OpenAI's clients send) read into its value, as
/// vLLM hands it to templates (text that is no JSON stays text).
fn history_call(c: &Value, i: usize, j: usize) -> Result<Value, ApiError> {
    let bad = |m: &str| ApiError::invalid(format!("messages[{i}].tool_calls[{j}]: {m}"), Some("messages"));
    let f = c
        .get("function")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("needs \"function\": {\"name\", \"arguments\"}"))?;
    let name = f.get("name").and_then(Value::as_str).ok_or_else(|| bad("function.name is required (a string)"))?;
    let arguments = match f.get("arguments") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::String(t)) => serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.clone())),
        Some(v) => v.clone(),
    };
    let mut call = Map::new();
    match c.get("id") {
        None | Some(Value::Null) => {}
        Some(Value::String(id)) => {
            call.insert("id".into(), id.clone().into());
        }
        Some(_) => return Err(bad("id must be a string")),
    }
    call.insert("type".into(), "function".into());
    call.insert("function".into(), json!({"name": name, "arguments": arguments}));
    Ok(Value::Object(call))
}

/// `POST /v1/chat/completions`.
pub fn parse_chat(o: &Map<String, Value>) -> Result<GenRequest, ApiError> {
    let out = parse_messages(o)?;
    let mut r = parse_common(o, vec![PromptInput::Chat(out)], &["max_tokens", "max_completion_tokens"])?;
    if r.echo {
        return Err(ApiError::invalid("'echo' is a /v1/completions parameter", Some("echo")));
    }
    // Audio output: refused rather than answered with text alone; `modalities: ["text"]` is what every answer is.
    if field(o, "modalities").is_some_and(|m| m.as_array().is_none_or(|a| a.iter().any(|x| x.as_str() != Some("text"))))
    {
        return Err(ApiError::invalid("'modalities' other than [\"text\"] are not supported", Some("modalities")));
    }
    if field(o, "audio").is_some() {
        return Err(ApiError::invalid("'audio' output is not supported", Some("audio")));
    }
    // Function calling: "required" and a named function constrain the choice to the calls' schema.
    r.tools = ToolRequest::parse(o).map_err(|(m, param)| ApiError::invalid(m, Some(param)))?;
    if let Some(t) = &r.tools {
        if let Some(schema) = t.schema() {
            if r.json.is_some() {
                return Err(ApiError::invalid(
                    "a JSON 'response_format' (or 'guided_json') cannot be combined with 'tool_choice' \"required\" or a named function, whose calls are JSON already",
                    Some("tool_choice"),
                ));
            }
            refuse_past_the_end(r.ignore_eos, r.min_tokens, "'tool_choice' \"required\" or a named function")?;
            // A keyword the constraint cannot enforce is a 400, as in response_format, naming the function.
            let format = TextFormat::schema(&schema).map_err(|e| {
                let whose = match &t.choice {
                    ToolChoice::Named(n) => format!("function {n:?}'s parameters"),
                    _ => "the tools' parameters".into(),
                };
                ApiError::invalid(format!("'tools': {whose} cannot constrain the choice: {e}"), Some("tools"))
            })?;
            r.json = Some(JsonFormat::Text(format));
        }
    }
    let top = top_count(o, "top_logprobs")?;
    r.logprobs = match boolean(o, "logprobs")? {
        Some(true) => Some(top.unwrap_or(0)),
        _ if top.is_some() => {
            return Err(ApiError::invalid("'top_logprobs' needs 'logprobs': true", Some("top_logprobs")))
        }
        _ => None,
    };
    Ok(r)
}

/// What `POST /tokenize` tokenizes (vLLM's endpoint): a completion prompt, or chat messages through the model's
/// chat template — the token ids the generation endpoints would run for them.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenizeInput {
    /// A `prompt` string; `add_special_tokens` (default true, as completions): bos where the tokenizer adds one.
    Text { prompt: String, add_special_tokens: bool },
    /// `messages`, rendered with `add_generation_prompt` (default true, as chat completions).
    /// `tools`: what the chat endpoint would render with the same request's tools.
    Chat { messages: Vec<ChatMessage>, add_generation_prompt: bool, tools: Option<Value> },
}

/// A validated `POST /tokenize` request.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenizeRequest {
    pub model: Option<String>,
    pub input: TokenizeInput,
    /// Also return each token's vocabulary entry (`token_strs`).
    pub return_token_strs: bool,
}

/// `POST /tokenize`: `{"prompt": str}` or `{"messages": [...]}` (exactly one), with vLLM's options.
pub fn parse_tokenize(o: &Map<String, Value>) -> Result<TokenizeRequest, ApiError> {
    let model = model_field(o)?;
    let return_token_strs = boolean(o, "return_token_strs")?.unwrap_or(false);
    let input = match (field(o, "prompt"), field(o, "messages")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid("give either 'prompt' or 'messages', not both", Some("messages")))
        }
        (None, None) => return Err(ApiError::invalid("'prompt' or 'messages' is required", Some("prompt"))),
        (Some(Value::String(p)), None) => {
            if field(o, "add_generation_prompt").is_some() {
                return Err(ApiError::invalid(
                    "'add_generation_prompt' applies to 'messages'",
                    Some("add_generation_prompt"),
                ));
            }
            TokenizeInput::Text {
                prompt: p.clone(),
                add_special_tokens: boolean(o, "add_special_tokens")?.unwrap_or(true),
            }
        }
        (Some(v), None) => {
            return Err(ApiError::invalid(format!("'prompt' must be a string, got {}", type_name(v)), Some("prompt")))
        }
        (None, Some(_)) => {
            // The template writes the special tokens it wants; bos follows the chat endpoint's rule.
            if boolean(o, "add_special_tokens")? == Some(true) {
                return Err(ApiError::invalid(
                    "'add_special_tokens' applies to 'prompt'; 'messages' get the chat endpoint's tokens",
                    Some("add_special_tokens"),
                ));
            }
            if field(o, "continue_final_message").is_some_and(|v| v.as_bool() != Some(false)) {
                return Err(ApiError::invalid(
                    "'continue_final_message' is not supported",
                    Some("continue_final_message"),
                ));
            }
            TokenizeInput::Chat {
                messages: parse_messages(o)?,
                add_generation_prompt: boolean(o, "add_generation_prompt")?.unwrap_or(true),
                tools: ToolRequest::parse(o).map_err(|(m, param)| ApiError::invalid(m, Some(param)))?.map(|t| t.spec),
            }
        }
    };
    Ok(TokenizeRequest { model, input, return_token_strs })
}

/// A validated `POST /detokenize` request: token ids (bounds against the vocabulary are the server's check).
#[derive(Debug, Clone, PartialEq)]
pub struct DetokenizeRequest {
    pub model: Option<String>,
    pub tokens: Vec<u32>,
}

/// `POST /detokenize`: `{"tokens": [ids]}`.
pub fn parse_detokenize(o: &Map<String, Value>) -> Result<DetokenizeRequest, ApiError> {
    let model = model_field(o)?;
    let bad = |m: String| ApiError::invalid(m, Some("tokens"));
    let tokens = match field(o, "tokens") {
        None => return Err(bad("'tokens' is required".into())),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_u64().filter(|&t| t <= u32::MAX as u64).map(|t| t as u32))
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(|| bad("'tokens' must be a list of non-negative integers".into()))?,
        Some(v) => return Err(bad(format!("'tokens' must be a list of token ids, got {}", type_name(v)))),
    };
    Ok(DetokenizeRequest { model, tokens })
}

/// `usage` object.
pub fn usage(prompt: usize, completion: usize) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

/// Which endpoint a response belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Completion,
    Chat,
}

/// One generated token's log-probabilities as a response shows them: the server's texts and bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLp {
    pub text: String,
    pub bytes: Vec<u8>,
    /// Characters of the choice's text before this token's text (`text_offset`).
    pub offset: usize,
    /// None for a prompt's first token (nothing comes before it).
    pub logprob: Option<f32>,
    /// The most likely tokens (text, bytes, log-probability), most likely first.
    pub top: Vec<(String, Vec<u8>, f32)>,
}

/// A log-probability as JSON; -inf (and anything not finite) as OpenAI's -9999.0.
fn lp_value(x: f32) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        json!(-9999.0)
    }
}

fn lp_opt(x: Option<f32>) -> Value {
    x.map_or(Value::Null, lp_value)
}

/// A token as the legacy completions API names it: its text, or, for a token that is only part of a
/// UTF-8 character, `bytes:` and its bytes as `\xNN` escapes (OpenAI's form), so that such tokens
/// neither show as U+FFFD nor share one `top_logprobs` key.
pub fn legacy_token(text: &str, bytes: &[u8]) -> String {
    if std::str::from_utf8(bytes).is_ok() {
        return text.to_string();
    }
    let mut s = String::from("bytes:");
    for b in bytes {
        s.push_str(&format!("\\x{b:02x}"));
    }
    s
}

/// The `logprobs` object of a choice, or of a stream chunk, for `toks`. Completions (legacy):
/// `tokens`, `token_logprobs`, `top_logprobs` (a map token → log-probability of the alternatives and
/// the chosen token) and `text_offset` (each token's `offset`: characters into the choice's text). Chat:
/// `content`, one entry a token with its `bytes` and `top_logprobs`.
pub fn logprobs_json(kind: Kind, toks: &[TokenLp]) -> Value {
    match kind {
        Kind::Completion => {
            let top: Vec<Value> = toks
                .iter()
                .map(|t| {
                    let Some(lp) = t.logprob else { return Value::Null };
                    let mut m = Map::new();
                    for (s, b, x) in &t.top {
                        m.entry(legacy_token(s, b)).or_insert_with(|| lp_value(*x));
                    }
                    m.entry(legacy_token(&t.text, &t.bytes)).or_insert_with(|| lp_value(lp));
                    Value::Object(m)
                })
                .collect();
            json!({
                "tokens": toks.iter().map(|t| legacy_token(&t.text, &t.bytes)).collect::<Vec<_>>(),
                "token_logprobs": toks.iter().map(|t| lp_opt(t.logprob)).collect::<Vec<_>>(),
                "top_logprobs": top,
                "text_offset": toks.iter().map(|t| t.offset).collect::<Vec<_>>(),
            })
        }
        Kind::Chat => {
            let content: Vec<Value> = toks
                .iter()
                .map(|t| {
                    let top: Vec<Value> = t
                        .top
                        .iter()
                        .map(|(s, b, x)| json!({"token": s, "logprob": lp_value(*x), "bytes": b}))
                        .collect();
                    json!({"token": t.text, "logprob": lp_opt(t.logprob), "bytes": t.bytes, "top_logprobs": top})
                })
                .collect();
            json!({"content": content, "refusal": null})
        }
    }
}

/// A choice's answer: its text (a chat message's `content`, null where the message only calls tools) and its
/// tool calls.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub content: Option<String>,
    pub calls: Vec<ToolCall>,
}

impl Reply {
    pub fn text(t: String) -> Self {
        Reply { content: Some(t), calls: Vec::new() }
    }
}

/// Builds response bodies and stream chunks for one request.
pub struct Responder {
    pub kind: Kind,
    pub id: String,
    pub created: u64,
    pub model: String,
    /// `stream_options.include_usage`: every chunk before the usage chunk carries `"usage": null`.
    pub usage_nulls: bool,
}

impl Responder {
    pub fn new(kind: Kind, seq: u64, model: &str) -> Self {
        let created =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let prefix = match kind {
            Kind::Completion => "cmpl",
            Kind::Chat => "chatcmpl",
        };
        Responder {
            kind,
            id: format!("{prefix}-{seq:x}{created:x}"),
            created,
            model: model.to_string(),
            usage_nulls: false,
        }
    }

    /// The whole (non-streaming) response: `choices` as (reply, finish reason, `logprobs` object or null), in
    /// index order.
    pub fn full(&self, choices: &[(Reply, &str, Value)], prompt: usize, completion: usize) -> Value {
        let choices: Vec<Value> = choices
            .iter()
            .enumerate()
            .map(|(index, (reply, finish, lp))| match self.kind {
                Kind::Completion => json!({"index": index, "text": reply.content.as_deref().unwrap_or(""),
                                           "logprobs": lp, "finish_reason": finish}),
                Kind::Chat => {
                    let mut message = json!({"role": "assistant", "content": reply.content});
                    if !reply.calls.is_empty() {
                        message["tool_calls"] = reply.calls.iter().map(|c| c.to_json(None)).collect();
                    }
                    json!({"index": index, "message": message, "logprobs": lp, "finish_reason": finish})
                }
            })
            .collect();
        let object = match self.kind {
            Kind::Completion => "text_completion",
            Kind::Chat => "chat.completion",
        };
        json!({"id": self.id, "object": object, "created": self.created, "model": self.model,
               "system_fingerprint": null, "choices": choices, "usage": usage(prompt, completion)})
    }

    /// One stream chunk of choice `index`: a text delta (with its tokens' `logprobs` object, or null),
    /// or the end (`finish`), or (chat) the opening role chunk.
    pub fn chunk(&self, index: usize, text: Option<&str>, finish: Option<&str>, role: bool, lp: Value) -> Value {
        match self.kind {
            Kind::Completion => self.with_usage(json!({
                "id": self.id, "object": "text_completion", "created": self.created, "model": self.model,
                "system_fingerprint": null,
                "choices": [{"index": index, "text": text.unwrap_or(""), "logprobs": lp, "finish_reason": finish}],
            })),
            Kind::Chat => {
                let mut delta = Map::new();
                if role {
                    delta.insert("role".into(), "assistant".into());
                }
                if let Some(t) = text {
                    delta.insert("content".into(), t.into());
                }
                self.delta_chunk(index, delta, finish, lp)
            }
        }
    }

    /// A chat stream chunk of choice `index` with this `delta` (text, tool calls).
    pub fn delta_chunk(&self, index: usize, delta: Map<String, Value>, finish: Option<&str>, lp: Value) -> Value {
        self.with_usage(json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "system_fingerprint": null, "choices": [{"index": index, "delta": delta, "logprobs": lp, "finish_reason": finish}],
        }))
    }

    fn with_usage(&self, mut c: Value) -> Value {
        if self.usage_nulls {
            c["usage"] = Value::Null;
        }
        c
    }

    /// The usage-only chunk sent last when `stream_options.include_usage` is set.
    pub fn usage_chunk(&self, prompt: usize, completion: usize) -> Value {
        let object = match self.kind {
            Kind::Completion => "text_completion",
            Kind::Chat => "chat.completion.chunk",
        };
        json!({"id": self.id, "object": object, "created": self.created, "model": self.model,
               "system_fingerprint": null, "choices": [], "usage": usage(prompt, completion)})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(s: &str) -> Map<String, Value> {
        parse_body(s.as_bytes()).unwrap()
    }

    #[test]
    fn tokenize_requests() {
        let t = parse_tokenize(&obj(r#"{"prompt": "hi", "return_token_strs": true}"#)).unwrap();
        assert_eq!(t.input, TokenizeInput::Text { prompt: "hi".into(), add_special_tokens: true });
        assert!(t.return_token_strs);
        let t = parse_tokenize(&obj(r#"{"prompt": "hi", "add_special_tokens": false, "model": "m"}"#)).unwrap();
        assert_eq!(t.input, TokenizeInput::Text { prompt: "hi".into(), add_special_tokens: false });
        assert_eq!(t.model.as_deref(), Some("m"));
        let t = parse_tokenize(&obj(
            r#"{"messages": [{"role": "developer", "content": "x"}, {"role": "user", "content": [{"type": "text", "text": "y"}]}],
                "add_generation_prompt": false}"#,
        ))
        .unwrap();
        let TokenizeInput::Chat { messages, add_generation_prompt, .. } = t.input else { panic!("{t:?}") };
        assert!(!add_generation_prompt && !t.return_token_strs);
        assert_eq!(
            messages.iter().map(|m| (m.role.as_str(), m.content.as_str())).collect::<Vec<_>>(),
            [("system", "x"), ("user", "y")]
        );
        for (body, param) in [
            (r#"{}"#, "prompt"),
            (r#"{"prompt": "a", "messages": []}"#, "messages"),
            (r#"{"prompt": ["a"]}"#, "prompt"),
            (r#"{"prompt": "a", "add_generation_prompt": true}"#, "add_generation_prompt"),
            (r#"{"messages": [{"role": "user", "content": "b"}], "add_special_tokens": true}"#, "add_special_tokens"),
            (
                r#"{"messages": [{"role": "user", "content": "b"}], "continue_final_message": true}"#,
                "continue_final_message",
            ),
            (r#"{"messages": [{"role": "function", "content": "b"}]}"#, "messages"),
            (r#"{"messages": [{"role": "user", "content": "b"}], "tools": [{"type": "x"}]}"#, "tools"),
            (r#"{"prompt": "a", "return_token_strs": "yes"}"#, "return_token_strs"),
            (r#"{"prompt": "a", "model": 3}"#, "model"),
        ] {
            let e = parse_tokenize(&obj(body)).unwrap_err();
            assert_eq!((e.status, e.param.as_deref()), (StatusCode::BAD_REQUEST, Some(param)), "{body}: {e:?}");
        }
    }

    #[test]
    fn detokenize_requests() {
        assert_eq!(parse_detokenize(&obj(r#"{"tokens": [0, 5, 4294967295]}"#)).unwrap().tokens, [0, 5, u32::MAX]);
        assert!(parse_detokenize(&obj(r#"{"tokens": []}"#)).unwrap().tokens.is_empty());
        for body in [
            r#"{}"#,
            r#"{"tokens": "1 2"}"#,
            r#"{"tokens": [-1]}"#,
            r#"{"tokens": [1.5]}"#,
            r#"{"tokens": [4294967296]}"#,
        ] {
            let e = parse_detokenize(&obj(body)).unwrap_err();
            assert_eq!(e.param.as_deref(), Some("tokens"), "{body}");
        }
    }

    #[test]
    fn completion_requests() {
        let r =
            parse_completion(&obj(r#"{"model":"m","prompt":"hi","max_tokens":5,"temperature":0,"stop":"x","seed":3}"#))
                .unwrap();
        assert_eq!((r.prompts, r.n), (vec![PromptInput::Text("hi".into())], 1));
        assert_eq!(
            (r.max_tokens, r.temperature, r.stop.clone(), r.seed),
            (Some(5), 0.0, vec!["x".to_string()], Some(3))
        );
        let prompts = |s| parse_completion(&obj(s)).unwrap().prompts;
        assert_eq!(prompts(r#"{"prompt":[1,2,3]}"#), [PromptInput::Tokens(vec![1, 2, 3])]);
        assert_eq!(prompts(r#"{"prompt":[[4]]}"#), [PromptInput::Tokens(vec![4])]);
        assert_eq!(prompts(r#"{"prompt":["a","b"]}"#), [PromptInput::Text("a".into()), PromptInput::Text("b".into())]);
        assert_eq!(
            prompts(r#"{"prompt":[[4],[5,6]]}"#),
            [PromptInput::Tokens(vec![4]), PromptInput::Tokens(vec![5, 6])]
        );
        let r =
            parse_completion(&obj(r#"{"prompt":["a","b"],"n":3,"best_of":3,"logit_bias":{},"echo":true}"#)).unwrap();
        assert_eq!((r.prompts.len(), r.n, r.echo, r.logprobs), (2, 3, true, None));
        let lp = |s| parse_completion(&obj(s)).unwrap().logprobs;
        assert_eq!(lp(r#"{"prompt":"a","logprobs":3}"#), Some(3));
        assert_eq!(lp(r#"{"prompt":"a","logprobs":0}"#), Some(0));
        assert_eq!(lp(r#"{"prompt":"a","logprobs":null}"#), None);
        assert_eq!(lp(r#"{"prompt":"a","logprobs":false,"echo":true}"#), None);
        let r =
            parse_completion(&obj(r#"{"prompt":"a","logit_bias":{"50":5,"7":-100},"frequency_penalty":0.5}"#)).unwrap();
        assert_eq!((r.logit_bias, r.presence_penalty, r.frequency_penalty), (vec![(7, -100.0), (50, 5.0)], 0.0, 0.5));
        assert_eq!(parse_completion(&obj(r#"{"prompt":"a","max_tokens":0,"echo":true}"#)).unwrap().max_tokens, Some(0));
        for bad in [
            r#"{}"#,
            r#"{"prompt":5}"#,
            r#"{"prompt":"a","max_tokens":-1}"#,
            r#"{"prompt":"a","max_tokens":0}"#,
            r#"{"prompt":"a","max_tokens":"5"}"#,
            r#"{"prompt":"a","temperature":3}"#,
            r#"{"prompt":"a","temperature":"hot"}"#,
            r#"{"prompt":"a","top_p":0}"#,
            r#"{"prompt":"a","top_k":-2}"#,
            r#"{"prompt":"a","n":0}"#,
            r#"{"prompt":"a","n":129}"#,
            r#"{"prompt":["a","b"],"n":65}"#,
            r#"{"prompt":"a","n":2,"best_of":3}"#,
            r#"{"prompt":"a","logit_bias":{"x":5}}"#,
            r#"{"prompt":"a","logit_bias":{"50":101}}"#,
            r#"{"prompt":"a","presence_penalty":2.5}"#,
            r#"{"prompt":"a","logit_bias":[1]}"#,
            r#"{"prompt":["a",5]}"#,
            r#"{"prompt":["a",[]]}"#,
            r#"{"prompt":"a","stop":[1]}"#,
            r#"{"prompt":"a","stop":""}"#,
            r#"{"prompt":[-1]}"#,
            r#"{"prompt":"a","logprobs":21}"#,
            r#"{"prompt":"a","logprobs":-1}"#,
            r#"{"prompt":"a","logprobs":true}"#,
            r#"{"prompt":"a","model":7}"#,
            r#"{"prompt":"a","tools":[{"type":"function","function":{"name":"f"}}]}"#,
            r#"{"prompt":"a","tool_choice":"auto"}"#,
            r#"{"prompt":"a","parallel_tool_calls":"no"}"#,
        ] {
            let e = parse_completion(&obj(bad)).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        let r = parse_completion(&obj(
            r#"{"prompt":"a","max_tokens":8,"repetition_penalty":1.25,"min_p":0.05,"min_tokens":8,"length_penalty":1}"#,
        ))
        .unwrap();
        assert_eq!((r.repetition_penalty, r.min_p, r.min_tokens), (1.25, 0.05, 8));
        for bad in [
            r#"{"prompt":"a","repetition_penalty":0}"#,
            r#"{"prompt":"a","repetition_penalty":-1}"#,
            r#"{"prompt":"a","min_p":1.01}"#,
            r#"{"prompt":"a","min_tokens":-1}"#,
            r#"{"prompt":"a","max_tokens":2,"min_tokens":3}"#,
            r#"{"prompt":"a","min_tokens":1,"guided_json":{"type":"object"}}"#,
            r#"{"prompt":"a","length_penalty":2}"#,
        ] {
            let e = parse_completion(&obj(bad)).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        let r = parse_completion(&obj(r#"{"prompt":"a","guided_choice":["yes","no"]}"#)).unwrap();
        assert_eq!(r.json, Some(JsonFormat::Choice(vec!["yes".into(), "no".into()])));
        for bad in [
            r#"{"prompt":"a","guided_choice":[]}"#,
            r#"{"prompt":"a","guided_choice":"yes"}"#,
            r#"{"prompt":"a","guided_choice":["yes",""]}"#,
            r#"{"prompt":"a","guided_choice":["yes",1]}"#,
            r#"{"prompt":"a","guided_choice":["yes"],"guided_json":{"type":"object"}}"#,
            r#"{"prompt":"a","guided_choice":["yes"],"ignore_eos":true}"#,
        ] {
            let e = parse_completion(&obj(bad)).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        // vLLM 0.12's structured_outputs, and guided_regex.
        let r = parse_completion(&obj(r#"{"prompt":"a","structured_outputs":{"choice":["yes","no"]}}"#)).unwrap();
        assert_eq!(r.json, Some(JsonFormat::Choice(vec!["yes".into(), "no".into()])));
        let so = r#"{"prompt":"a","structured_outputs":{"json_object":true,"disable_fallback":true,"regex":null}}"#;
        assert_eq!(parse_completion(&obj(so)).unwrap().json, Some(JsonFormat::Object));
        let r = parse_completion(&obj(r#"{"prompt":"a","guided_regex":"[0-9]+"}"#)).unwrap();
        assert!(
            matches!(r.json, Some(JsonFormat::Text(TextFormat::Regex(ref p))) if p.source() == "[0-9]+" && p.is_match(b"42"))
        );
        let r = parse_completion(&obj(r#"{"prompt":"a","structured_outputs":{"json":"{\"type\":\"integer\"}"}}"#));
        assert!(matches!(r.unwrap().json, Some(JsonFormat::Text(TextFormat::JsonSchema { .. }))));
        assert_eq!(parse_completion(&obj(r#"{"prompt":"a","structured_outputs":{}}"#)).unwrap().json, None);
        // guided_grammar / structured_outputs.grammar: GBNF.
        for body in [
            r#"{"prompt":"a","guided_grammar":"root ::= (\"yes\" | \"no\") [.!]?"}"#,
            r#"{"prompt":"a","structured_outputs":{"grammar":"root ::= (\"yes\" | \"no\") [.!]?"}}"#,
        ] {
            let r = parse_completion(&obj(body)).unwrap();
            assert!(
                matches!(r.json, Some(JsonFormat::Text(TextFormat::Grammar(ref g))) if g.is_match(b"no!") && !g.is_match(b"yes?"))
            );
        }
        for (bad, param) in [
            (r#"{"prompt":"a","guided_regex":"(?<=a)b"}"#, "guided_regex"),
            (r#"{"prompt":"a","guided_regex":7}"#, "guided_regex"),
            (r#"{"prompt":"a","structured_outputs":{"regex":"a","choice":["a"]}}"#, "structured_outputs.choice"),
            (r#"{"prompt":"a","structured_outputs":{"grammar":"root ::= x"}}"#, "structured_outputs.grammar"),
            (r#"{"prompt":"a","guided_grammar":"root ::= root \"a\" | \"b\""}"#, "guided_grammar"),
            (r#"{"prompt":"a","guided_grammar":"start: \"a\""}"#, "guided_grammar"),
            (r#"{"prompt":"a","guided_grammar":" "}"#, "guided_grammar"),
            (r#"{"prompt":"a","guided_grammar":"root ::= \"a\"","guided_regex":"a"}"#, "guided_grammar"),
            (r#"{"prompt":"a","structured_outputs":{"structural_tag":{}}}"#, "structured_outputs.structural_tag"),
            (
                r#"{"prompt":"a","structured_outputs":{"disable_any_whitespace":true}}"#,
                "structured_outputs.disable_any_whitespace",
            ),
            (r#"{"prompt":"a","structured_outputs":{"json_object":"yes"}}"#, "structured_outputs.json_object"),
            (r#"{"prompt":"a","structured_outputs":{"regexp":"a"}}"#, "structured_outputs.regexp"),
            (r#"{"prompt":"a","structured_outputs":"a+"}"#, "structured_outputs"),
            (r#"{"prompt":"a","response_format":{"type":"json_object"},"guided_regex":"a"}"#, "guided_regex"),
            (r#"{"prompt":"a","guided_whitespace_pattern":" "}"#, "guided_whitespace_pattern"),
            (r#"{"prompt":"a","guided_regex":"a+","ignore_eos":true}"#, "ignore_eos"),
        ] {
            let e = parse_completion(&obj(bad)).unwrap_err();
            assert_eq!((e.status, e.param.as_deref()), (StatusCode::BAD_REQUEST, Some(param)), "{bad}: {}", e.message);
        }
        // function calling's values that ask for nothing are served on completions too
        assert!(parse_completion(&obj(r#"{"prompt":"a","tools":[],"tool_choice":"none","parallel_tool_calls":true}"#))
            .is_ok());
        assert!(parse_body(b"{\"prompt\": NaN}").is_err());
        assert!(parse_body(b"[1]").is_err());
        assert!(parse_body(b"{").is_err());
    }

    #[test]
    fn legacy_tokens_of_partial_characters_are_bytes() {
        assert_eq!(legacy_token(" hello", b" hello"), " hello");
        assert_eq!(legacy_token("\u{FFFD}", &[0xf0, 0x9f]), "bytes:\\xf0\\x9f");
        let t = TokenLp {
            text: "\u{FFFD}".into(),
            bytes: vec![0x8c],
            offset: 7,
            logprob: Some(-1.0),
            top: vec![("\u{FFFD}".into(), vec![0x8c], -1.0), ("\u{FFFD}".into(), vec![0x8d], -2.0)],
        };
        let v = logprobs_json(Kind::Completion, &[t]);
        assert_eq!(v["tokens"][0], "bytes:\\x8c");
        assert_eq!(v["text_offset"][0], 7);
        assert_eq!(v["top_logprobs"][0].as_object().unwrap().len(), 2, "distinct keys: {v}");
    }

    #[test]
    fn chat_requests() {
        let r = parse_chat(&obj(
            r#"{"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],"max_completion_tokens":3}"#,
        ))
        .unwrap();
        assert_eq!((r.max_tokens, r.n), (Some(3), 1));
        match &r.prompts[..] {
            [PromptInput::Chat(m)] => assert_eq!(m[1].content, "ab"),
            _ => panic!(),
        }
        assert_eq!(parse_chat(&obj(r#"{"messages":[{"role":"user","content":"x"}],"n":4}"#)).unwrap().n, 4);
        assert!(parse_chat(&obj(r#"{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"text"}}"#))
            .is_ok_and(|r| r.json.is_none()));
        assert!(parse_chat(&obj(
            r#"{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}"#
        ))
        .is_ok_and(|r| r.json == Some(JsonFormat::Object)));
        for schema in [
            r#""response_format":{"type":"json_schema","json_schema":{"name":"n","schema":{"type":"integer"},"strict":true}}"#,
            r#""guided_json":{"type":"integer"}"#,
            r#""guided_json":"{\"type\": \"integer\"}""#,
        ] {
            let r = parse_chat(&obj(&format!(r#"{{"messages":[{{"role":"user","content":"x"}}],{schema}}}"#))).unwrap();
            assert!(
                matches!(&r.json, Some(JsonFormat::Text(TextFormat::JsonSchema { text, .. })) if text == r#"{"type":"integer"}"#),
                "{schema}"
            );
        }
        for bad in [
            r#"{"messages":[]}"#,
            r#"{"messages":"hi"}"#,
            r#"{"messages":[{"role":"wizard","content":"x"}]}"#,
            r#"{"messages":[{"role":"user"}]}"#,
            r#"{"messages":[{"content":"x"}]}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{}}}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"schema":{"type":"string","pattern":"a"}}}}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"guided_json":"{not json"}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"guided_json":{},"response_format":{"type":"json_object"}}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"},"ignore_eos":true}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"response_format":"json"}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"echo":true}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"top_logprobs":2}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"logprobs":false,"top_logprobs":2}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":21}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"logprobs":3}"#,
            // legacy function calling, tool choices without tools or beside a JSON format, calls in the history that
            // are not calls or not an assistant's, and stream_options without streaming
            r#"{"messages":[{"role":"user","content":"x"}],"functions":[{"name":"f"}]}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"function_call":"auto"}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"tool_choice":"required"}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"function","function":{"name":"f"}}}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"parallel_tool_calls":"yes"}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required","response_format":{"type":"json_object"}}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required","ignore_eos":true}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"string","pattern":"b"}}}}}],"tool_choice":{"type":"function","function":{"name":"f"}}}"#,
            r#"{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"1"}]},{"role":"user","content":"x"}]}"#,
            r#"{"messages":[{"role":"user","content":"x","tool_calls":[{"type":"function","function":{"name":"f"}}]}]}"#,
            r#"{"messages":[{"role":"tool","content":"x","tool_call_id":5}]}"#,
            r#"{"messages":[{"role":"assistant","content":"a","function_call":{"name":"f","arguments":"{}"}}]}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"modalities":["text","audio"]}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"audio":{"voice":"alloy","format":"wav"}}"#,
            r#"{"messages":[{"role":"user","content":"x","name":7}]}"#,
        ] {
            assert!(parse_chat(&obj(bad)).is_err(), "{bad}");
        }
        for fine in [
            r#"{"messages":[{"role":"user","content":"x"}],"tool_choice":"none","tools":[]}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"parallel_tool_calls":false,"function_call":"none"}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"parallel_tool_calls":true}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"modalities":["text"],"audio":null}"#,
            r#"{"messages":[{"role":"assistant","content":"a","tool_calls":[],"function_call":null},{"role":"user","content":"x"}]}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true}}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"string","pattern":"b"}}}}}]}"#,
        ] {
            assert!(parse_chat(&obj(fine)).is_ok(), "{fine}");
        }
        // A conversation with a call and its result: the arguments' JSON text read into its value (key order kept),
        // content null read as ""; a named function constrains the choice to its parameters.
        let r = parse_chat(&obj(
            r#"{"messages":[{"role":"user","content":"x"},
                {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"b\": 1, \"a\": [true]}"}}]},
                {"role":"tool","tool_call_id":"c1","content":[{"type":"text","text":"ok"}]}],
                "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"b":{"type":"integer"}}}}}],
                "tool_choice":{"type":"function","function":{"name":"f"}}}"#,
        ))
        .unwrap();
        let [PromptInput::Chat(m)] = &r.prompts[..] else { panic!() };
        assert_eq!(m[1].content, "");
        let call = &m[1].tool_calls.as_ref().unwrap()[0];
        assert_eq!(
            call.to_string(),
            r#"{"id":"c1","type":"function","function":{"name":"f","arguments":{"b":1,"a":[true]}}}"#
        );
        assert_eq!(
            (m[2].role.as_str(), m[2].tool_call_id.as_deref(), m[2].content.as_str()),
            ("tool", Some("c1"), "ok")
        );
        assert!(
            matches!(&r.json, Some(JsonFormat::Text(TextFormat::JsonSchema { text, .. })) if text == r#"{"type":"object","properties":{"b":{"type":"integer"}}}"#)
        );
        let lp = |s| parse_chat(&obj(s)).unwrap().logprobs;
        assert_eq!(lp(r#"{"messages":[{"role":"user","content":"x"}],"logprobs":true}"#), Some(0));
        assert_eq!(lp(r#"{"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":5}"#), Some(5));
        assert_eq!(lp(r#"{"messages":[{"role":"user","content":"x"}],"logprobs":false}"#), None);
    }
}
