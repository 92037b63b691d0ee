//! The HTTP side: axum routes for the OpenAI endpoints, SSE streaming, /health, /metrics, and a
//! graceful drain on SIGTERM/SIGINT. It knows the engine only through [`Engine`]'s channels.
use super::api::{self, ApiError, GenRequest, JsonFormat, Kind, PromptInput, Reply, Responder};
use super::chat::ChatTemplate;
use super::engine::{DoneReason, Engine, GenLogprob, Output, Submit};
use super::scheduler::{SeqId, SeqRequest};
use super::tools::{self, AutoStream, ToolCall, ToolChoice, ToolFormat};
use crate::backend::json_mode::{Choices, Constraint, Grammar, JsonVocab, TokenConstraint};
use crate::backend::paged::TokenSampling;
use crate::backend::sampling::TokenLogprobs;
use crate::util::errln;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value::Null;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest request body accepted.
const MAX_BODY_BYTES: usize = 16 << 20;

/// Shared by every handler.
pub struct AppState {
    pub engine: Engine,
    pub model_name: String,
    pub chat: ChatTemplate,
    /// Requests admitted and not finished (queued or running).
    inflight: AtomicUsize,
    /// Beyond this many in flight, requests get 429.
    max_inflight: usize,
    draining: AtomicBool,
    seed_counter: AtomicU64,
    /// When the server started, in Unix seconds (`/v1/models`' `created`).
    started_unix: u64,
    /// Origins whose browser pages may call the API (CORS); `*`: any (the default, as vLLM's).
    pub allowed_origins: Vec<String>,
    /// Every token's bytes for JSON mode and schemas, made by the first request with either.
    json_vocab: std::sync::OnceLock<Arc<JsonVocab>>,
    /// JSON mode's constraint (its kept masks serve every request).
    json_object: std::sync::OnceLock<Arc<Constraint>>,
    /// The constraints of the last [`SCHEMAS_KEPT`] schemas, grammars and patterns by their kind and text, most recent
    /// last: a request with the same one reuses the masks the others computed.
    schemas: std::sync::Mutex<Vec<(String, Arc<dyn TokenConstraint>)>>,
    /// The tool-call format `tool_choice` "auto" reads choices in (the chat template's, or `--tool-call-parser`).
    tool_format: Option<ToolFormat>,
    /// The format's markers that are special tokens here (decoded to nothing): put back in the text calls are
    /// read from.
    tool_markers: Vec<(u32, &'static str)>,
}

/// Schemas whose constraints (and kept masks) the server keeps: a client that sends its schema with
/// every request computes each state's mask once.
const SCHEMAS_KEPT: usize = 16;

impl AppState {
    pub fn new(engine: Engine, model_name: String, chat: ChatTemplate, max_inflight: usize) -> Self {
        AppState {
            engine,
            model_name,
            chat,
            inflight: AtomicUsize::new(0),
            max_inflight,
            draining: AtomicBool::new(false),
            seed_counter: AtomicU64::new(0),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            allowed_origins: vec!["*".into()],
            json_vocab: std::sync::OnceLock::new(),
            json_object: std::sync::OnceLock::new(),
            schemas: std::sync::Mutex::new(Vec::new()),
            tool_format: None,
            tool_markers: Vec::new(),
        }
    }

    /// The tool-call format `tool_choice` "auto" reads (None: "auto" with tools is refused).
    pub fn set_tool_format(&mut self, f: Option<ToolFormat>) {
        let tok = self.engine.tokenizer;
        self.tool_format = f;
        self.tool_markers = f
            .map(|f| f.markers())
            .unwrap_or_default()
            .iter()
            .filter_map(|&m| {
                tok.token_to_id(m).filter(|&id| tok.decode(&[id], true).is_ok_and(|t| t.is_empty())).map(|id| (id, m))
            })
            .collect();
    }

    /// What token `id` adds to the text tool calls are read from, before its shown text: its marker, where the
    /// shown text drops it.
    fn marker(&self, id: u32) -> &'static str {
        self.tool_markers.iter().find(|m| m.0 == id).map_or("", |m| m.1)
    }

    /// A tool call of a reply, with a fresh id in the id shape of the server's tool-call format.
    fn new_call(&self, (name, arguments): tools::RawCall) -> ToolCall {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let seed = t ^ self.seed_counter.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed).rotate_left(17);
        ToolCall::new(name, arguments, self.tool_format, seed)
    }

    /// The token table of JSON mode and schemas, over the model's vocabulary.
    fn json_vocab(&self) -> Arc<JsonVocab> {
        self.json_vocab
            .get_or_init(|| Arc::new(JsonVocab::from_tokenizer(self.engine.tokenizer, self.engine.vocab_size)))
            .clone()
    }

    /// The constraint of a request's JSON format: JSON mode's shared one, or its schema's, grammar's or pattern's
    /// (kept or new).
    fn json_constraint(&self, f: &JsonFormat) -> Arc<dyn TokenConstraint> {
        let vocab = self.json_vocab();
        let text = match f {
            JsonFormat::Choice(list) => return Arc::new(Choices::new(list, vocab)),
            JsonFormat::Object => {
                return self
                    .json_object
                    .get_or_init(|| Arc::new(Constraint::new(Arc::new(Grammar::json_object()), vocab)))
                    .clone()
            }
            JsonFormat::Text(t) => t,
        };
        let key = text.key();
        let mut kept = self.schemas.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = kept.iter().position(|(k, _)| *k == key) {
            let hit = kept.remove(i);
            kept.push(hit);
        } else {
            if kept.len() >= SCHEMAS_KEPT {
                kept.remove(0);
            }
            kept.push((key, text.over(vocab)));
        }
        kept.last().expect("just kept").1.clone()
    }

    fn count(&self, outcome: &'static str) {
        self.engine.metrics.lock().unwrap_or_else(|e| e.into_inner()).count_request(outcome);
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        // a served name may hold slashes (org/model), which clients send escaped or not
        .route("/v1/models/{*id}", get(model))
        .route("/tokenize", post(tokenize_route))
        .route("/detokenize", post(detokenize_route))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(read_body))
        .layer(axum::middleware::from_fn_with_state(state.clone(), cors))
        .with_state(state)
}

/// CORS, as vLLM's defaults (any origin, method and header; no credentials): a web page can call the API. A
/// preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered here: 204, or 403 for an origin
/// not in --allowed-origins; the other responses to an allowed Origin carry Access-Control-Allow-Origin.
async fn cors(State(s): State<Arc<AppState>>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use header::HeaderValue;
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else { return next.run(req).await };
    let any = s.allowed_origins.iter().any(|o| o == "*");
    let allowed = any || origin.to_str().is_ok_and(|o| s.allowed_origins.iter().any(|a| a.trim_end_matches('/') == o));
    let preflight = req.method() == axum::http::Method::OPTIONS
        && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut r = if preflight && !allowed {
        return ApiError::status(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            format!("the origin {origin:?} may not call this server (see serve's --allowed-origins)"),
        )
        .into_response();
    } else if preflight {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, HEAD, OPTIONS"));
        if let Some(asked) = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        }
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        r
    } else {
        next.run(req).await
    };
    if allowed {
        let h = r.headers_mut();
        if any {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        } else {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            h.append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
    r
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body())).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            // Clients back off by it (the openai client reads it before its own schedule).
            r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        r
    }
}

async fn not_found() -> ApiError {
    ApiError::status(
        StatusCode::NOT_FOUND,
        "not_found_error",
        "no such endpoint; see /v1/completions, /v1/chat/completions, /v1/models, /tokenize, /detokenize, /health, \
         /metrics",
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::status(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        format!(
            "{method} is not allowed on {}; /v1/completions, /v1/chat/completions, /tokenize and /detokenize take POST, \
             the rest GET",
            uri.path()
        ),
    )
}

async fn health(State(s): State<Arc<AppState>>) -> Response {
    if s.draining.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"status": "draining"}))).into_response()
    } else if !s.engine.is_alive() {
        (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"status": "engine stopped"}))).into_response()
    } else {
        Json(serde_json::json!({"status": "ok"})).into_response()
    }
}

async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    let text = s.engine.metrics.lock().unwrap_or_else(|e| e.into_inner()).render(Instant::now());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

fn model_card(s: &AppState) -> serde_json::Value {
    let created = s.started_unix;
    serde_json::json!({"id": s.model_name, "object": "model", "created": created, "owned_by": "trtforge",
                       "max_model_len": s.engine.max_model_len})
}

async fn models(State(s): State<Arc<AppState>>) -> Response {
    Json(serde_json::json!({"object": "list", "data": [model_card(&s)]})).into_response()
}

async fn model(State(s): State<Arc<AppState>>, id: Result<Path<String>, PathRejection>) -> Response {
    // a name that is not UTF-8 once unescaped: the error shape too, not axum's plain text
    let id = match id {
        Ok(Path(id)) => id,
        Err(e) => return ApiError::invalid(e.body_text(), Some("model")).into_response(),
    };
    if id == s.model_name {
        Json(model_card(&s)).into_response()
    } else {
        unknown_model(&s, &id).into_response()
    }
}

/// The error for the first of `ids` at or past `vocab`, naming it as `what`.
fn outside_vocab(mut ids: impl Iterator<Item = u32>, vocab: usize, what: &str) -> Option<String> {
    ids.find(|&t| t as usize >= vocab).map(|bad| format!("{what} {bad} is outside the vocabulary (size {vocab})"))
}

/// A request's `model`, when it names one, must be the served model's name (an empty name, as clients with no
/// model configured send, is the served model, as in vLLM).
fn check_model(s: &AppState, model: &Option<String>) -> Result<(), ApiError> {
    match model {
        Some(m) if !m.is_empty() && *m != s.model_name => Err(unknown_model(s, m)),
        _ => Ok(()),
    }
}

fn unknown_model(s: &AppState, m: &str) -> ApiError {
    let mut e = ApiError::status(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        format!("the model {m:?} does not exist; this server serves {:?}", s.model_name),
    )
    .with_code("model_not_found");
    e.param = Some("model".into());
    e
}

type Body = Result<Bytes, axum::extract::rejection::BytesRejection>;

async fn completions(State(s): State<Arc<AppState>>, body: Body) -> Response {
    generate(s, body, Kind::Completion).await
}

async fn chat_completions(State(s): State<Arc<AppState>>, body: Body) -> Response {
    generate(s, body, Kind::Chat).await
}

/// A body the server cannot take (over MAX_BODY_BYTES: 413) gets OpenAI's error shape too.
fn body_error(e: axum::extract::rejection::BytesRejection) -> ApiError {
    let msg = format!("{} (the server takes request bodies of at most {MAX_BODY_BYTES} bytes)", e.body_text());
    ApiError::status(e.status(), "invalid_request_error", msg)
}

/// Runs `f` (parsing, templating, tokenizing: CPU work of up to a body's size) off the async workers, so that a
/// large request never stalls the others (or /health).
async fn off_workers<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(ApiError::status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            format!("request handling failed: {e}"),
        ))
    })
}

async fn generate(s: Arc<AppState>, body: Body, kind: Kind) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            s.count("rejected_invalid");
            return body_error(e).into_response();
        }
    };
    let st = s.clone();
    let started = off_workers(move || start(&st, &body, kind)).await;
    match started {
        Ok(started) => {
            let mut r = Responder::new(kind, started.choices[0].guard.id, &s.model_name);
            r.usage_nulls = started.req.stream && started.req.include_usage;
            if started.req.stream {
                stream_response(r, started)
            } else {
                collect_response(r, started).await
            }
        }
        Err(e) => {
            s.count(if e.status == StatusCode::TOO_MANY_REQUESTS { "rejected_overload" } else { "rejected_invalid" });
            e.into_response()
        }
    }
}

/// A JSON-in, JSON-out endpoint that does not generate: `f` runs off the async workers.
async fn json_endpoint(
    s: Arc<AppState>,
    body: Body,
    f: fn(&AppState, &[u8]) -> Result<serde_json::Value, ApiError>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return body_error(e).into_response(),
    };
    match off_workers(move || f(&s, &body)).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn tokenize_route(State(s): State<Arc<AppState>>, body: Body) -> Response {
    json_endpoint(s, body, tokenize_body).await
}

/// `POST /tokenize` (vLLM's shape): the token ids the generation endpoints would run for a prompt or a
/// conversation, their count and the context length; prompts over the context are refused as there.
fn tokenize_body(s: &AppState, body: &[u8]) -> Result<serde_json::Value, ApiError> {
    let req = api::parse_tokenize(&api::parse_body(body)?)?;
    check_model(s, &req.model)?;
    let tok = s.engine.tokenizer;
    let max = s.engine.max_model_len;
    let (ids, param) = match &req.input {
        api::TokenizeInput::Text { prompt, add_special_tokens } => {
            (tok.encode_within(prompt, *add_special_tokens, max), "prompt")
        }
        api::TokenizeInput::Chat { messages, add_generation_prompt, tools } => {
            let extra = template_tools(tools.as_ref());
            (s.chat.encode_within_with(tok, messages, *add_generation_prompt, &extra, max), "messages")
        }
    };
    let ids = ids
        .map_err(|e| ApiError::invalid(format!("could not tokenize the {param}: {e}"), Some(param)))?
        .map_err(|n| {
            prompt_over_context(max, format!("the {param} has more than {max} tokens ({n} in its beginning alone)"))
        })?;
    if ids.len() > max {
        return Err(prompt_over_context(max, format!("the {param} has {} tokens", ids.len())));
    }
    let strs =
        req.return_token_strs.then(|| ids.iter().map(|&t| tok.id_to_token(t).unwrap_or_default()).collect::<Vec<_>>());
    Ok(serde_json::json!({"count": ids.len(), "max_model_len": max, "tokens": ids, "token_strs": strs}))
}

async fn detokenize_route(State(s): State<Arc<AppState>>, body: Body) -> Response {
    json_endpoint(s, body, detokenize_body).await
}

/// `POST /detokenize` (vLLM's shape): the text of token ids, special tokens included.
fn detokenize_body(s: &AppState, body: &[u8]) -> Result<serde_json::Value, ApiError> {
    let req = api::parse_detokenize(&api::parse_body(body)?)?;
    check_model(s, &req.model)?;
    let tok = s.engine.tokenizer;
    if let Some(m) = outside_vocab(req.tokens.iter().copied(), tok.vocab_size(), "token id") {
        return Err(ApiError::invalid(m, Some("tokens")));
    }
    let text = tok
        .decode(&req.tokens, false)
        .map_err(|e| ApiError::invalid(format!("could not decode the tokens: {e}"), Some("tokens")))?;
    Ok(serde_json::json!({"prompt": text}))
}

/// Holds a sequence's place: while it lives the sequence counts as in flight; dropping it before
/// the end (client gone, handler cancelled, a sibling choice failed) aborts the sequence and frees
/// its KV blocks.
struct RequestGuard {
    state: Arc<AppState>,
    id: SeqId,
    finished: bool,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.state.engine.abort(self.id);
        }
        self.state.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}

type OutputRx = tokio::sync::mpsc::UnboundedReceiver<Output>;

/// One choice of a request: its sequence in the engine.
struct Choice {
    guard: RequestGuard,
    rx: OutputRx,
    /// `echo`: the prompt's text, sent before the completion (empty otherwise).
    echo: String,
    /// `echo` with `logprobs`: the prompt's tokens, whose log-probabilities come first.
    prompt_ids: Vec<u32>,
    /// `max_tokens` 0 (with `echo`): the prompt alone; the engine's one token is not shown.
    prompt_only: bool,
}

/// How a chat choice's text becomes its reply (function calling).
#[derive(Debug, Clone)]
enum ReplyMode {
    Text,
    /// `tool_choice` "auto": the text read in the model's tool-call format.
    Auto(ToolFormat),
    /// "required": the text is the constrained list of calls.
    Required,
    /// A named function: the text is its constrained arguments.
    Named(String),
}

/// The template variables of a request's tools (`apply_chat_template(tools=...)`).
fn template_tools(tools: Option<&serde_json::Value>) -> Vec<(&'static str, minijinja::Value)> {
    tools.map(|t| ("tools", minijinja::Value::from(minijinja::value::Serde(t)))).into_iter().collect()
}

/// A request admitted and submitted: one choice per (prompt, n), in OpenAI's index order.
struct Started {
    req: GenRequest,
    mode: ReplyMode,
    choices: Vec<Choice>,
    /// Prompt tokens of the request (each prompt counted once, however many choices it has).
    prompt_tokens: usize,
}

/// Validates, tokenizes and submits a request: every prompt's `n` choices, or none.
fn start(s: &Arc<AppState>, body: &[u8], kind: Kind) -> Result<Started, ApiError> {
    if s.draining.load(Ordering::SeqCst) {
        return Err(ApiError::status(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "the server is shutting down",
        ));
    }
    let o = api::parse_body(body)?;
    let req = match kind {
        Kind::Completion => api::parse_completion(&o)?,
        Kind::Chat => api::parse_chat(&o)?,
    };
    check_model(s, &req.model)?;
    let mode = match req.tools.as_ref().map(|t| &t.choice) {
        None | Some(ToolChoice::None) => ReplyMode::Text,
        Some(ToolChoice::Required) => ReplyMode::Required,
        Some(ToolChoice::Named(n)) => ReplyMode::Named(n.clone()),
        Some(ToolChoice::Auto) => match s.tool_format {
            Some(f) => ReplyMode::Auto(f),
            None => {
                return Err(ApiError::invalid(
                    format!(
                    "'tool_choice' \"auto\" (the default with 'tools') reads calls in the model's tool-call format, \
and this model's chat template writes none; serve with --tool-call-parser {} for a model trained on one, or ask for \
'tool_choice' \"required\" or a named function (decoding constrained to the tools' schemas), or \"none\"",
                    ToolFormat::NAMES.join("|")
                ),
                    Some("tool_choice"),
                ))
            }
        },
    };
    let vocab = s.engine.tokenizer.vocab_size().min(s.engine.vocab_size);
    if let Some(m) = outside_vocab(req.stop_token_ids.iter().copied(), vocab, "stop token id") {
        return Err(ApiError::invalid(m, Some("stop_token_ids")));
    }
    let shaping = backend_features(s, &req)?;
    let many = req.prompts.len() > 1;
    // (token ids, max new tokens, echo text) per prompt
    let mut prompts = Vec::with_capacity(req.prompts.len());
    for (i, p) in req.prompts.iter().enumerate() {
        // which prompt an error is about, where there are several
        let which = |m: String| if many { format!("prompt {i}: {m}") } else { m };
        let prompt = match tokenize(s, p, req.tools.as_ref().map(|t| &t.spec))
            .map_err(|e| ApiError::invalid(which(e), Some("prompt")))?
        {
            Ok(ids) => ids,
            Err(at_least) => {
                let max = s.engine.max_model_len;
                let mut e = prompt_over_context(
                    max,
                    format!("the prompt has more than {max} tokens ({at_least} in its beginning alone)"),
                );
                e.message = which(e.message);
                return Err(e);
            }
        };
        let max_tokens = admit_length(s, &req, kind, prompt.len()).map_err(|mut e| {
            e.message = which(e.message);
            e
        })?;
        // echo: the prompt as the client gave it (a token list as its text, special tokens included)
        let echo = match (req.echo, p) {
            (false, _) => String::new(),
            (true, PromptInput::Text(t)) => t.clone(),
            (true, _) => s.engine.tokenizer.decode(&prompt, false).map_err(|e| {
                ApiError::invalid(which(format!("could not decode the prompt for 'echo': {e}")), Some("echo"))
            })?,
        };
        prompts.push((prompt, max_tokens, echo));
    }
    let total = prompts.len() * req.n;
    // Admission: a bounded number of sequences in flight; beyond it, 429 (never an unbounded queue).
    if total > s.max_inflight {
        return Err(ApiError::invalid(
            format!(
                "this request asks for {total} choices; the server runs at most {} sequences at once",
                s.max_inflight
            ),
            Some("n"),
        ));
    }
    if s.inflight.fetch_add(total, Ordering::SeqCst) + total > s.max_inflight {
        s.inflight.fetch_sub(total, Ordering::SeqCst);
        return Err(ApiError::status(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            format!("the server is at capacity ({} sequences in flight); retry later", s.max_inflight),
        )
        .with_code("rate_limit_exceeded"));
    }
    let seed = req.seed.unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        t ^ s.seed_counter.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
    });
    let mut choices = Vec::with_capacity(total);
    for (k, (prompt, max_tokens, echo)) in prompts.iter().flat_map(|p| std::iter::repeat_n(p, req.n)).enumerate() {
        // Choice k draws from its own stream (choice 0 from `seed` itself, so n = 1 is unchanged by n's support).
        let seed = seed ^ (k as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        let sampling = TokenSampling {
            temperature: req.temperature,
            top_k: req.top_k,
            top_p: req.top_p,
            seed,
            logprobs: req.logprobs.map(|n| n as u8),
        };
        let submit = Submit {
            // The engine adds the model's stop tokens (eos, <|im_end|>) unless ignore_eos.
            seq: SeqRequest {
                prompt: prompt.clone(),
                sampling,
                // max_tokens 0 (echo: the prompt alone) runs one step, whose token is not shown
                max_tokens: (*max_tokens).max(1),
                stop_ids: req.stop_token_ids.clone(),
                prompt_logprobs: req.logprobs.filter(|_| req.echo).map(|n| n as u8),
                shaping: shaping.clone(),
            },
            stop_strings: req.stop.clone(),
            ignore_eos: req.ignore_eos,
        };
        let Some((id, rx)) = s.engine.submit(submit) else {
            // the sequences not submitted leave the count here; those submitted, through their guards
            s.inflight.fetch_sub(total - k, Ordering::SeqCst);
            return Err(ApiError::status(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "the engine has stopped",
            ));
        };
        let guard = RequestGuard { state: s.clone(), id, finished: false };
        let prompt_ids = if req.echo && req.logprobs.is_some() { prompt.clone() } else { Vec::new() };
        choices.push(Choice { guard, rx, echo: echo.clone(), prompt_ids, prompt_only: *max_tokens == 0 });
    }
    let prompt_tokens = prompts.iter().map(|(p, ..)| p.len()).sum();
    Ok(Started { req, mode, choices, prompt_tokens })
}

/// What the request asks of the backend beyond sampling — `logit_bias` and penalties (returned as the
/// sequence's [`LogitShaping`](crate::backend::paged::LogitShaping)), log-probabilities — checked against
/// what this backend does (a 400 naming the parameter otherwise) and against the vocabulary.
fn backend_features(s: &AppState, req: &GenRequest) -> Result<Option<crate::backend::paged::LogitShaping>, ApiError> {
    // The parameters that change logits, each with whether this request uses it.
    let changes = [
        (!req.logit_bias.is_empty(), "logit_bias"),
        (req.presence_penalty != 0.0, "presence_penalty"),
        (req.frequency_penalty != 0.0, "frequency_penalty"),
        (req.repetition_penalty != 1.0, "repetition_penalty"),
        (req.min_tokens > 0, "min_tokens"),
        (req.min_p > 0.0 && req.temperature > 0.0, "min_p"),
    ];
    let used = changes.iter().find(|c| c.0).map(|c| c.1);
    let shaped = used.is_some();
    if (shaped || req.json.is_some()) && !s.engine.shaping {
        let param = match used {
            Some(p) => p,
            None if req.tools.as_ref().is_some_and(|t| t.schema().is_some()) => "tool_choice",
            None => "response_format",
        };
        return Err(ApiError::invalid(
            format!(
                "'{param}' is not available on the {} backend yet; serve with --backend cpu for it",
                s.engine.backend_name
            ),
            Some(param),
        ));
    }
    let vocab = s.engine.tokenizer.vocab_size().min(s.engine.vocab_size);
    if let Some(m) = outside_vocab(req.logit_bias.iter().map(|b| b.0), vocab, "'logit_bias' token id") {
        return Err(ApiError::invalid(m, Some("logit_bias")));
    }
    if req.logprobs.is_some() && !s.engine.logprobs {
        return Err(ApiError::invalid(
            format!(
                "'logprobs' is not available on the {} backend yet (it samples on the GPU); serve with --backend cpu for log-probabilities",
                s.engine.backend_name
            ),
            Some("logprobs"),
        ));
    }
    // The end tokens are the sequence's, which the engine completes (Engine's `Command::Add`).
    let json = req.json.as_ref().map(|f| crate::backend::paged::JsonShaping { constraint: s.json_constraint(f) });
    Ok((shaped || json.is_some()).then(|| crate::backend::paged::LogitShaping {
        bias: req.logit_bias.clone(),
        presence: req.presence_penalty,
        frequency: req.frequency_penalty,
        repetition: (req.repetition_penalty != 1.0).then_some(req.repetition_penalty),
        min_tokens: req.min_tokens,
        end: Vec::new(),
        min_p: req.min_p,
        temperature: req.temperature,
        json,
    }))
}

/// A prompt's token ids, or `Ok(Err(n))` when it surely exceeds the context (at least `n` tokens: see
/// `Tokenizer::encode_within`); an error message on failure.
fn tokenize(
    s: &AppState,
    p: &PromptInput,
    tools: Option<&serde_json::Value>,
) -> Result<Result<Vec<u32>, usize>, String> {
    let tok = s.engine.tokenizer;
    let limit = s.engine.max_model_len;
    let prompt = match p {
        PromptInput::Text(t) => tok.encode_within(t, true, limit),
        PromptInput::Tokens(ids) => {
            if let Some(m) = outside_vocab(ids.iter().copied(), tok.vocab_size(), "token id") {
                return Err(m);
            }
            Ok(Ok(ids.clone()))
        }
        PromptInput::Chat(msgs) => s.chat.encode_within_with(tok, msgs, true, &template_tools(tools), limit),
    }
    .map_err(|e| format!("could not tokenize the prompt: {e}"))?;
    if prompt.as_ref().is_ok_and(|p| p.is_empty()) {
        return Err("the prompt is empty (no tokens)".into());
    }
    Ok(prompt)
}

/// The 400 for a prompt that alone does not fit the context (`param` prompt); `detail` says by how much.
fn prompt_over_context(max_len: usize, detail: String) -> ApiError {
    ApiError::invalid(format!("this model's maximum context length is {max_len} tokens; {detail}"), Some("prompt"))
        .with_code("context_length_exceeded")
}

/// The new tokens a prompt of `len` tokens gets (`max_tokens`, or its default), or the context-length error.
fn admit_length(s: &AppState, req: &GenRequest, kind: Kind, len: usize) -> Result<usize, ApiError> {
    let max_len = s.engine.max_model_len;
    let too_long = |need: usize| {
        ApiError::invalid(
            format!(
                "this model's maximum context length is {max_len} tokens; the prompt has {len} tokens and {} more were requested ({need} in all)",
                need - len
            ),
            Some(if req.max_tokens.is_some() { "max_tokens" } else { "prompt" }),
        )
        .with_code("context_length_exceeded")
    };
    if len >= max_len {
        return Err(prompt_over_context(
            max_len,
            format!("the prompt alone has {len} tokens (at most {} leave room for a new token)", max_len - 1),
        ));
    }
    let max_tokens = match (req.max_tokens, kind) {
        (Some(m), _) => m,
        (None, Kind::Completion) => api::DEFAULT_COMPLETION_MAX_TOKENS.min(max_len - len),
        (None, Kind::Chat) => max_len - len,
    };
    if len + max_tokens > max_len {
        return Err(too_long(len + max_tokens));
    }
    Ok(max_tokens)
}

/// One token's text and bytes as a response shows them.
fn piece(s: &AppState, id: u32) -> (String, Vec<u8>) {
    let tok = s.engine.tokenizer;
    (tok.decode(&[id], false).unwrap_or_default(), tok.token_bytes(id))
}

/// A token's log-probabilities with the texts and bytes a response shows, at `offset` characters into
/// the choice's text.
fn token_lp(s: &AppState, l: &TokenLogprobs, offset: usize) -> api::TokenLp {
    let (text, bytes) = piece(s, l.token);
    let top = l
        .top
        .iter()
        .map(|&(id, x)| {
            let (t, b) = piece(s, id);
            (t, b, x)
        })
        .collect();
    api::TokenLp { text, bytes, offset, logprob: Some(l.logprob), top }
}

/// A token's shown text becomes `piece`, what it added in context by incremental decoding (a word's
/// leading space included), unless it is only part of a character (it then keeps its own).
fn in_context(t: &mut api::TokenLp, piece: &str) {
    if !piece.is_empty() && std::str::from_utf8(&t.bytes).is_ok() {
        t.text = piece.to_string();
    }
}

/// A generated token's log-probabilities (`base`: characters of the choice's text before the generated
/// text, its echoed prompt), its text in context.
fn gen_lp(s: &AppState, g: &GenLogprob, base: usize) -> api::TokenLp {
    let mut t = token_lp(s, &g.lp, base + g.offset);
    in_context(&mut t, &g.piece);
    t
}

/// The prompt's tokens as `echo` with `logprobs` shows them: the first without a log-probability, each
/// later one with what the engine scored for it (`Output::PromptLogprobs`); offsets from 0.
fn prompt_lps(s: &AppState, ids: &[u32], lps: &[TokenLogprobs]) -> Vec<api::TokenLp> {
    // Offsets and texts as for generated tokens: from decoding the prompt incrementally (a character's tokens
    // at its start, a word's token with its leading space; special tokens add no text).
    let mut detok = s.engine.tokenizer.stream_decoder(true);
    let mut at = 0;
    ids.iter()
        .enumerate()
        .map(|(i, &id)| {
            let mut t = match i.checked_sub(1).and_then(|k| lps.get(k)).filter(|l| l.token == id) {
                Some(l) => token_lp(s, l, at),
                None => {
                    let (text, bytes) = piece(s, id);
                    api::TokenLp { text, bytes, offset: at, logprob: None, top: Vec::new() }
                }
            };
            let delta = detok.step(id).unwrap_or_default();
            in_context(&mut t, &delta);
            at += delta.chars().count();
            t
        })
        .collect()
}

/// What a request gets when the engine reports an error for one of its sequences (a response, or a stream event).
fn engine_error(msg: String) -> ApiError {
    ApiError::status(StatusCode::SERVICE_UNAVAILABLE, "server_error", msg)
}

/// A choice's reply from its text (and, for "auto", the text with the markers special tokens wrote) by the
/// request's mode.
fn reply_of(s: &AppState, mode: &ReplyMode, text: String, raw: String) -> Reply {
    let call = |raw| s.new_call(raw);
    match mode {
        ReplyMode::Text => Reply::text(text),
        ReplyMode::Auto(f) => match f.parse(&raw) {
            Some((content, calls)) => Reply { content, calls: calls.into_iter().map(call).collect() },
            None => Reply::text(raw),
        },
        ReplyMode::Required => {
            let calls: Vec<ToolCall> = tools::required_calls(&text).into_iter().map(call).collect();
            // cut short before its first call: the text is all there is
            let content = calls.is_empty().then_some(text);
            Reply { content, calls }
        }
        ReplyMode::Named(n) => Reply { content: None, calls: vec![call((n.clone(), text))] },
    }
}

/// `finish_reason`: "tool_calls" where the model ended its reply with calls it chose to make ("auto",
/// "required"); a named function's forced call ends with "stop", as OpenAI's.
fn finish_reason(mode: &ReplyMode, calls: &[ToolCall], reason: DoneReason) -> &'static str {
    match (mode, reason) {
        (ReplyMode::Auto(_) | ReplyMode::Required, DoneReason::Stop) if !calls.is_empty() => "tool_calls",
        _ => reason.as_str(),
    }
}

/// Waits for every choice (they run side by side in the engine); any failure fails the request, and
/// dropping the rest of the guards aborts the other choices.
async fn collect_response(r: Responder, mut st: Started) -> Response {
    let mut out = Vec::with_capacity(st.choices.len());
    let mut completion = 0;
    let auto = matches!(st.mode, ReplyMode::Auto(_));
    for c in st.choices.iter_mut() {
        let mut text = std::mem::take(&mut c.echo);
        // "auto" tool calls: the text with the markers special tokens wrote
        let mut raw = String::new();
        let base = text.chars().count();
        let mut lps = Vec::new();
        let mut prompt_scored = Vec::new();
        loop {
            match c.rx.recv().await {
                Some(Output::PromptLogprobs(v)) => prompt_scored = v,
                Some(Output::Token { .. }) if c.prompt_only => {}
                Some(Output::Token { id, text: t, logprobs }) => {
                    if auto {
                        raw.push_str(c.guard.state.marker(id));
                        raw.push_str(&t);
                    }
                    text.push_str(&t);
                    lps.extend(logprobs.iter().map(|g| gen_lp(&c.guard.state, g, base)));
                }
                Some(Output::Done { reason, text: t, logprobs, completion_tokens, .. }) => {
                    c.guard.finished = true;
                    let reason = if c.prompt_only {
                        DoneReason::Length
                    } else {
                        raw.push_str(&t);
                        text.push_str(&t);
                        lps.extend(logprobs.iter().map(|g| gen_lp(&c.guard.state, g, base)));
                        completion += completion_tokens;
                        reason
                    };
                    if !c.prompt_ids.is_empty() {
                        // echo with logprobs: the prompt's tokens first, offsets counted over their texts
                        let mut p = prompt_lps(&c.guard.state, &c.prompt_ids, &prompt_scored);
                        p.append(&mut lps);
                        lps = p;
                    }
                    let lp = match st.req.logprobs {
                        Some(_) => api::logprobs_json(r.kind, &lps),
                        None => serde_json::Value::Null,
                    };
                    let reply = reply_of(&c.guard.state, &st.mode, text, raw);
                    let finish = finish_reason(&st.mode, &reply.calls, reason);
                    out.push((reply, finish, lp));
                    break;
                }
                Some(Output::Error(msg)) => {
                    c.guard.finished = true;
                    return engine_error(msg).into_response();
                }
                None => {
                    return ApiError::status(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "server_error",
                        "the engine stopped before the request finished",
                    )
                    .into_response()
                }
            }
        }
    }
    Json(r.full(&out, st.prompt_tokens, completion)).into_response()
}

struct StreamState {
    r: Responder,
    include_usage: bool,
    /// Every choice's guard (by index) and its outputs, merged as they come.
    guards: Vec<RequestGuard>,
    rx: futures_util::stream::SelectAll<futures_util::stream::BoxStream<'static, (usize, Output)>>,
    prompt_tokens: usize,
    completion_tokens: usize,
    /// The request asked for log-probabilities: each token's chunk carries its own.
    logprobs: bool,
    /// Per choice, characters of its text before the generated text (its echo), for `text_offset`.
    offsets: Vec<usize>,
    /// Per choice, `echo` with `logprobs`: the echo text and prompt ids whose chunk is not sent yet.
    echo_lp: Vec<Option<(String, Vec<u32>)>>,
    /// Per choice, `max_tokens` 0: the engine's token and text are not sent.
    prompt_only: Vec<bool>,
    /// Per choice, how its text becomes deltas (function calling).
    replies: Vec<StreamReply>,
    mode: ReplyMode,
    /// Per choice, log-probabilities of tokens whose text is held back (sent with the choice's next chunk).
    held_lp: Vec<Vec<GenLogprob>>,
    /// Choices not finished yet.
    open: usize,
    pending: VecDeque<Event>,
    done: bool,
}

/// What a piece of a streamed function-calling choice sends now.
enum Emit {
    /// Nothing yet (its tokens' log-probabilities wait for the next chunk).
    Hold,
    Content(String),
    /// A `delta.tool_calls` entry.
    Call(serde_json::Value),
}

/// A streamed chat choice's function calling.
enum StreamReply {
    Text,
    /// "auto": content passes as it is surely content, calls at the end.
    Auto(AutoStream),
    /// "required": the list of calls, read at the end.
    Required(String),
    /// A named function: its arguments stream as they come (the call's id and name with the first piece).
    Named {
        call: ToolCall,
        opened: bool,
    },
}

impl StreamState {
    /// The `logprobs` of the tokens held back for choice `i` and `g` (null when none or not asked).
    fn take_lp(&mut self, i: usize, g: Vec<GenLogprob>) -> serde_json::Value {
        let mut all = std::mem::take(&mut self.held_lp[i]);
        all.extend(g);
        self.stream_lp(i, &all)
    }

    /// A piece of choice `i`'s text (from token `id`, or the held-back text at its end) as a function-calling reply
    /// mode sends it: content that is surely content, a named call's arguments, or nothing yet.
    fn piece(&mut self, i: usize, id: Option<u32>, text: &str, logprobs: Vec<GenLogprob>) {
        let marker = match (&self.replies[i], id) {
            (StreamReply::Auto(_), Some(id)) => self.guards[i].state.marker(id),
            _ => "",
        };
        let emit = match &mut self.replies[i] {
            StreamReply::Text => Emit::Content(text.to_string()),
            StreamReply::Auto(a) => match a.push(&format!("{marker}{text}")) {
                c if c.is_empty() => Emit::Hold,
                c => Emit::Content(c),
            },
            StreamReply::Required(buf) => {
                buf.push_str(text);
                Emit::Hold
            }
            StreamReply::Named { .. } if text.is_empty() => Emit::Hold,
            StreamReply::Named { call, opened } => Emit::Call(if std::mem::replace(opened, true) {
                serde_json::json!({"index": 0, "function": {"arguments": text}})
            } else {
                ToolCall { arguments: text.to_string(), ..call.clone() }.to_json(Some(0))
            }),
        };
        match emit {
            Emit::Hold => self.held_lp[i].extend(logprobs),
            Emit::Content(c) => {
                let lp = self.take_lp(i, logprobs);
                self.pending.push_back(data(self.r.chunk(i, Some(&c), None, false, lp)));
            }
            Emit::Call(delta) => {
                let lp = self.take_lp(i, logprobs);
                self.push_tool_calls(i, vec![delta], lp);
            }
        }
    }

    fn push_tool_calls(&mut self, i: usize, calls: Vec<serde_json::Value>, lp: serde_json::Value) {
        let mut delta = serde_json::Map::new();
        delta.insert("tool_calls".into(), calls.into());
        self.pending.push_back(data(self.r.delta_chunk(i, delta, None, lp)));
    }

    /// The end of choice `i`'s text: what its mode still has to send; returns its calls.
    fn end(&mut self, i: usize) -> Vec<ToolCall> {
        let st = self.guards[i].state.clone();
        let (content, calls) = match &mut self.replies[i] {
            StreamReply::Text => return Vec::new(),
            StreamReply::Auto(a) => {
                let (rest, calls) = a.finish();
                (rest, calls.into_iter().map(|raw| st.new_call(raw)).collect())
            }
            StreamReply::Required(buf) => {
                let r = reply_of(&st, &ReplyMode::Required, std::mem::take(buf), String::new());
                (r.content.unwrap_or_default(), r.calls)
            }
            StreamReply::Named { call, opened } => {
                // (its arguments went out as they came; the call keeps its id and name, no arguments)
                let call = call.clone();
                if !std::mem::replace(opened, true) {
                    // no arguments came (cut short at once): the call still opens
                    let lp = self.take_lp(i, Vec::new());
                    self.push_tool_calls(i, vec![call.to_json(Some(0))], lp);
                }
                return vec![call];
            }
        };
        if !content.is_empty() {
            let lp = self.take_lp(i, Vec::new());
            self.pending.push_back(data(self.r.chunk(i, Some(&content), None, false, lp)));
        }
        if !calls.is_empty() {
            let lp = self.take_lp(i, Vec::new());
            let deltas = calls.iter().enumerate().map(|(k, c)| c.to_json(Some(k))).collect();
            self.push_tool_calls(i, deltas, lp);
        }
        calls
    }

    /// The `logprobs` of a chunk of choice `i` carrying the tokens `g` (null when none or not asked).
    fn stream_lp(&self, i: usize, g: &[GenLogprob]) -> serde_json::Value {
        if !self.logprobs || g.is_empty() {
            return serde_json::Value::Null;
        }
        let toks: Vec<api::TokenLp> = g.iter().map(|g| gen_lp(&self.guards[i].state, g, self.offsets[i])).collect();
        api::logprobs_json(self.r.kind, &toks)
    }
}

fn data(v: serde_json::Value) -> Event {
    Event::default().data(v.to_string())
}

/// Server-sent events: (chat: a role chunk per choice,) one chunk per generated token of a choice
/// (its `index` says which), a final chunk per choice with its `finish_reason`, the usage chunk if
/// asked for, then `data: [DONE]`. Dropping the stream (the client went away) drops the guards,
/// which abort the sequences.
fn stream_response(r: Responder, st: Started) -> Response {
    use futures_util::StreamExt;
    let mut pending = VecDeque::new();
    let n = st.choices.len();
    if r.kind == Kind::Chat {
        for i in 0..n {
            pending.push_back(data(r.chunk(i, Some(""), None, true, Null)));
        }
    }
    let mut guards = Vec::with_capacity(n);
    let mut streams = Vec::with_capacity(n);
    let offsets = st.choices.iter().map(|c| c.echo.chars().count()).collect();
    let mut echo_lp = Vec::with_capacity(n);
    let prompt_only: Vec<bool> = st.choices.iter().map(|c| c.prompt_only).collect();
    let s0 = st.choices.first().map(|c| c.guard.state.clone());
    let replies = (0..n)
        .map(|_| match &st.mode {
            ReplyMode::Text => StreamReply::Text,
            ReplyMode::Auto(f) => StreamReply::Auto(AutoStream::new(*f)),
            ReplyMode::Required => StreamReply::Required(String::new()),
            ReplyMode::Named(name) => {
                let call = s0.as_ref().expect("a choice").new_call((name.clone(), String::new()));
                StreamReply::Named { call, opened: false }
            }
        })
        .collect();
    for (i, c) in st.choices.into_iter().enumerate() {
        if !c.prompt_ids.is_empty() {
            // echo with logprobs: the echo chunk waits for the prompt's log-probabilities
            echo_lp.push(Some((c.echo, c.prompt_ids)));
        } else {
            echo_lp.push(None);
            if !c.echo.is_empty() {
                pending.push_back(data(r.chunk(i, Some(&c.echo), None, false, Null)));
            }
        }
        guards.push(c.guard);
        let one =
            futures_util::stream::unfold(c.rx, move |mut rx| async move { rx.recv().await.map(|o| ((i, o), rx)) });
        streams.push(one.boxed());
    }
    let state = StreamState {
        r,
        include_usage: st.req.include_usage,
        guards,
        rx: futures_util::stream::select_all(streams),
        prompt_tokens: st.prompt_tokens,
        completion_tokens: 0,
        logprobs: st.req.logprobs.is_some(),
        offsets,
        echo_lp,
        prompt_only,
        replies,
        held_lp: vec![Vec::new(); n],
        mode: st.mode,
        open: n,
        pending,
        done: false,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(ev) = st.pending.pop_front() {
                return Some((Ok::<Event, Infallible>(ev), st));
            }
            if st.done {
                return None;
            }
            let next = st.rx.next().await;
            // echo with logprobs: the echo chunk, with the prompt's tokens, before anything else of its choice
            if let Some((i, o)) = &next {
                if let Some((echo, ids)) = st.echo_lp[*i].take() {
                    let scored = match o {
                        Output::PromptLogprobs(v) => v.as_slice(),
                        _ => &[],
                    };
                    let toks = prompt_lps(&st.guards[*i].state, &ids, scored);
                    let lp = api::logprobs_json(st.r.kind, &toks);
                    st.pending.push_back(data(st.r.chunk(*i, Some(&echo), None, false, lp)));
                }
            }
            match next {
                Some((_, Output::PromptLogprobs(_))) => {}
                Some((i, Output::Token { .. })) if st.prompt_only[i] => {}
                Some((i, Output::Token { text, logprobs, .. })) if matches!(st.replies[i], StreamReply::Text) => {
                    let lp = st.stream_lp(i, &logprobs);
                    st.pending.push_back(data(st.r.chunk(i, Some(&text), None, false, lp)))
                }
                Some((i, Output::Token { id, text, logprobs })) => st.piece(i, Some(id), &text, logprobs),
                Some((i, Output::Done { reason, text, logprobs, completion_tokens, .. })) => {
                    st.guards[i].finished = true;
                    let (reason, text, logprobs) = if st.prompt_only[i] {
                        (DoneReason::Length, String::new(), Vec::new())
                    } else {
                        st.completion_tokens += completion_tokens;
                        (reason, text, logprobs)
                    };
                    let mut calls = Vec::new();
                    if !matches!(st.replies[i], StreamReply::Text) {
                        st.piece(i, None, &text, logprobs);
                        calls = st.end(i);
                    } else if !text.is_empty() || !logprobs.is_empty() {
                        let lp = st.stream_lp(i, &logprobs);
                        st.pending.push_back(data(st.r.chunk(i, Some(&text), None, false, lp)));
                    }
                    let finish = finish_reason(&st.mode, &calls, reason);
                    let end = match st.r.kind {
                        Kind::Chat => {
                            let lp = st.take_lp(i, Vec::new());
                            st.r.chunk(i, None, Some(finish), false, lp)
                        }
                        Kind::Completion => st.r.chunk(i, Some(""), Some(reason.as_str()), false, Null),
                    };
                    st.pending.push_back(data(end));
                    st.open -= 1;
                    if st.open == 0 {
                        if st.include_usage {
                            st.pending.push_back(data(st.r.usage_chunk(st.prompt_tokens, st.completion_tokens)));
                        }
                        st.pending.push_back(Event::default().data("[DONE]"));
                        st.done = true;
                    }
                }
                Some((i, Output::Error(msg))) => {
                    // the other choices are aborted when the state (their guards) is dropped
                    st.guards[i].finished = true;
                    st.pending.push_back(data(engine_error(msg).body()));
                    st.pending.push_back(Event::default().data("[DONE]"));
                    st.done = true;
                }
                None => {
                    let e = ApiError::status(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "the engine stopped");
                    st.pending.push_back(data(e.body()));
                    st.pending.push_back(Event::default().data("[DONE]"));
                    st.done = true;
                }
            }
        }
    });
    Sse::new(stream).into_response()
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// How long a client may take to send a request's headers (and an idle keep-alive connection may wait for its
/// next request): a connection that sends nothing is closed, so slow or silent clients cannot hold the server's
/// file descriptors.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a client may take to send a request body (at most MAX_BODY_BYTES): after it, 408.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves `state` on `listener` until SIGINT / SIGTERM, then drains: no new connections or requests, running
/// requests get `drain` to finish; a second signal exits at once. HTTP/1.1 connections with a header-read timeout
/// (axum::serve sets none). A client that shuts down its write side is taken as gone, as uvicorn (vLLM's server)
/// does: hyper's half-close support would keep a hung-up client's non-streaming request generating to the end,
/// where now its sequence is cancelled at once.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<AppState>, drain: Duration) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let app = router(state.clone());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // out of file descriptors and the like: wait for connections to close rather than spin
                    errln!("warning: accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut signal => break,
        };
        let _ = stream.set_nodelay(true);
        let svc = hyper_util::service::TowerToHyperService::new(app.clone());
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    drop(listener);
    errln!("shutting down: draining (running requests get {:.1} s; a second signal exits now)", drain.as_secs_f64());
    state.draining.store(true, Ordering::SeqCst);
    state.engine.drain(drain);
    std::thread::spawn(move || {
        std::thread::sleep(drain + Duration::from_secs(3));
        errln!("error: connections still open {:.0} s after the drain deadline; exiting", 3.0);
        std::process::exit(1);
    });
    tokio::select! {
        _ = graceful.shutdown() => Ok(()),
        _ = shutdown_signal() => {
            errln!("second signal: exiting without waiting for running requests");
            std::process::exit(130);
        }
    }
}

/// Reads a request's body within BODY_TIMEOUT (408 after it) and MAX_BODY_BYTES (413), in OpenAI's error shape,
/// before any handler: a client trickling its body cannot hold a connection and a handler.
async fn read_body(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            let too_big = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            return if too_big {
                ApiError::status(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "invalid_request_error",
                    format!("the request body is too large (the server takes at most {MAX_BODY_BYTES} bytes)"),
                )
                .into_response()
            } else {
                ApiError::invalid(format!("could not read the request body: {e}"), None).into_response()
            };
        }
        Err(_) => {
            return ApiError::status(
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request_error",
                format!("the request body did not arrive within {} s", BODY_TIMEOUT.as_secs()),
            )
            .into_response()
        }
    };
    next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await
}
