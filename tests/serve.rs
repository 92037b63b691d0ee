//! `trtforge serve` over real sockets on 127.0.0.1: the official `openai` Python client, raw HTTP
//! (malformed requests, mid-stream disconnects, overload, SIGTERM), concurrency against
//! `trtforge generate --greedy`, and a soak with cancellations. After every test the KV block pool
//! is empty again (read from /metrics).
//!
//! Tests take a lock so they run one at a time: the timing comparison must not share the CPU.
mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

struct Server {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(model: &str, extra: &[&str]) -> Server {
        Server::start_env(model, extra, &[])
    }
    fn start_env(model: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_trtforge"))
            .args(["serve", "--model", model, "--host", "127.0.0.1", "--port", "0"])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on http://") {
                    let _ = tx.send(addr.rsplit(':').next().unwrap().parse::<u16>().unwrap());
                }
                log2.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start: {}", log.lock().unwrap());
            }
        };
        Server { child, port, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Polls /metrics until nothing is running or waiting and no KV block is held.
    fn assert_pool_empty(&self) {
        let t = Instant::now();
        loop {
            let m = metrics(self.port);
            let (used, run, wait) =
                (m["trtforge_kv_blocks_used"], m["trtforge_num_requests_running"], m["trtforge_num_requests_waiting"]);
            if used == 0.0 && run == 0.0 && wait == 0.0 {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "KV blocks still held: used {used}, running {run}, waiting {wait}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 exchange on a fresh connection; returns (status, body) with chunked bodies decoded.
fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    if !head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return (status, body.to_string());
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    (status, out)
}

fn post(port: u16, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let (st, b) = http(port, "POST", path, &body.to_string());
    (st, serde_json::from_str(&b).unwrap_or_else(|e| panic!("{path} answered {st} with non-JSON {b:?}: {e}")))
}

/// The `data:` payloads of an SSE body.
fn sse_data(body: &str) -> Vec<String> {
    body.lines().filter_map(|l| l.strip_prefix("data: ")).map(str::to_string).collect()
}

fn metrics(port: u16) -> std::collections::HashMap<String, f64> {
    let (st, body) = http(port, "GET", "/metrics", "");
    assert_eq!(st, 200);
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

fn smollm2() -> Option<String> {
    model_file(SMOLLM2_GGUF).map(|p| p.to_str().unwrap().to_string())
}

fn tiny() -> String {
    fixture("tiny_llama").to_str().unwrap().to_string()
}

/// `trtforge generate --greedy` for one prompt: (text, compute seconds from its own report).
fn generate_greedy(model: &str, prompt: &str, max_new: usize) -> (String, f64) {
    let out = Command::new(env!("CARGO_BIN_EXE_trtforge"))
        .args(["generate", "--model", model, "--prompt", prompt, "--greedy", "--max-new-tokens", &max_new.to_string()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "generate failed: {err}");
    let text = String::from_utf8(out.stdout).unwrap();
    let text = text.strip_suffix('\n').unwrap_or(&text).to_string();
    // "... N new tokens (..); time to first token X ms, decode Y tok/s (...)"
    let num_after = |key: &str| -> f64 {
        let i = err.rfind(key).unwrap_or_else(|| panic!("no {key:?} in {err}")) + key.len();
        err[i..].split_whitespace().next().unwrap().trim_end_matches(',').parse().unwrap()
    };
    let ttft = num_after("time to first token ") / 1e3;
    let rate = num_after("decode ");
    let new_tokens: f64 = {
        let i = err.rfind(" new tokens").unwrap();
        err[..i].rsplit(' ').next().unwrap().parse().unwrap()
    };
    let decode = if new_tokens > 1.0 && rate > 0.0 { (new_tokens - 1.0) / rate } else { 0.0 };
    (text, ttft + decode)
}

const PROMPTS: &[&str] = &[
    "The capital of France is",
    "Once upon a time",
    "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer the slings and arrows of outrageous fortune",
    "List three colors:",
    "The quick brown fox",
    "In 1492, Columbus",
    "Water boils at",
    "My favourite food is",
    "Now is the winter of our discontent made glorious summer by this sun of York; and all the clouds that lour'd upon our house in the deep bosom of the ocean buried.",
    "def fibonacci(n):",
    "The sun rises in the",
    "Friends, Romans, countrymen, lend me your ears;",
    "A haiku about the sea:",
    "Photosynthesis is",
    "The largest planet in our solar system is",
    "Q: What is 2 + 2?\nA:",
];

#[test]
fn concurrent_greedy_requests_match_generate_and_are_batched() {
    let _g = serial();
    let Some(model) = smollm2() else { return };
    // Each prompt alone, through the CLI; its own report gives the one-by-one compute time.
    let max_new: Vec<usize> = (0..PROMPTS.len()).map(|i| 6 + (i * 5) % 11).collect();
    let mut alone = Vec::new();
    let mut sequential = 0.0;
    for (p, &n) in PROMPTS.iter().zip(&max_new) {
        let (text, secs) = generate_greedy(&model, p, n);
        alone.push(text);
        sequential += secs;
    }
    // The loop that queues the next decode step before the last one's tokens are sent
    // (TRTFORGE_SERVE_AHEAD=0), the one-step-at-a-time loop and the default loop that also queues
    // the next decode step of an unchanged batch behind the one in flight must all return what
    // `generate` does.
    for (overlap, ahead) in [("1", "0"), ("0", "0"), ("1", "1")] {
        let srv = Server::start_env(
            &model,
            &["--max-num-seqs", "16", "--max-num-batched-tokens", "256"],
            &[("TRTFORGE_SERVE_OVERLAP", overlap), ("TRTFORGE_SERVE_AHEAD", ahead)],
        );
        let t0 = Instant::now();
        let handles: Vec<_> = PROMPTS
            .iter()
            .zip(&max_new)
            .map(|(p, &n)| {
                let port = srv.port;
                let body = serde_json::json!({"prompt": p, "max_tokens": n, "temperature": 0});
                std::thread::spawn(move || post(port, "/v1/completions", &body))
            })
            .collect();
        let got: Vec<(u16, serde_json::Value)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let concurrent = t0.elapsed().as_secs_f64();
        for (i, (st, v)) in got.iter().enumerate() {
            assert_eq!(*st, 200, "{v}");
            assert_eq!(
                v["choices"][0]["text"].as_str().unwrap(),
                alone[i],
                "overlap {overlap} ahead {ahead}: prompt {i} {:?}",
                PROMPTS[i]
            );
        }
        // Batched, not one after another: alone, request i needs at least max_new[i] forward steps
        // (one prefill step, then one decode step per further token), so one by one the server would
        // run at least their sum; served together they share steps. Counted by the server itself
        // (/metrics), not timed: the wall times are printed for the record only (a timed assertion
        // failed on a busy 2-core machine while the batching was fine).
        let m = metrics(srv.port);
        let (steps, running_max) = (m["trtforge_engine_steps_total"], m["trtforge_num_requests_running_max"]);
        let one_by_one: usize = max_new.iter().sum();
        eprintln!(
            "16 requests: {steps} engine steps (one by one ≥ {one_by_one}), at most {running_max} running; \
             concurrent {concurrent:.2} s, one by one {sequential:.2} s (generate's own timings)"
        );
        assert!(
            steps < 0.6 * one_by_one as f64 && running_max >= 4.0,
            "overlap {overlap} ahead {ahead}: {steps} engine steps for 16 concurrent requests (one by one ≥ \
             {one_by_one}), at most {running_max} running at once: the requests were not batched"
        );
        srv.assert_pool_empty();
    }
}

/// Function calling with `tool_choice` "auto": `--tool-call-parser llama3_json` reads replies in Llama 3.1's call
/// format, checked through the official client by tests/serve_tools_auto.py (calls, streamed or not, validated by
/// `jsonschema`; text stays text); a format the server does not know is a CLI error. ("required" and named
/// functions, which need no format, are serve_openai.py's "tools:" section.)
#[test]
fn auto_tool_calls_in_a_model_format_reach_the_openai_client() {
    let _g = serial();
    let Some(model) = smollm2() else { return };
    let out = Command::new(env!("CARGO_BIN_EXE_trtforge"))
        .args(["serve", "--model", &model, "--port", "0", "--tool-call-parser", "xml"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("not a tool-call format") && err.contains("hermes"), "{err}");
    let has = Command::new("python3").args(["-c", "import openai, jsonschema"]).status().is_ok_and(|s| s.success());
    if !has {
        assert_ne!(
            std::env::var("TRTFORGE_REQUIRE_MODELS").as_deref(),
            Ok("1"),
            "the `openai` / `jsonschema` Python packages are missing (scripts/test.sh installs them)"
        );
        eprintln!("SKIP: the openai / jsonschema Python packages are missing");
        return;
    }
    let srv = Server::start(&model, &["--served-model-name", "smollm2", "--tool-call-parser", "llama3_json"]);
    let out = Command::new("python3")
        .args([root().join("tests/serve_tools_auto.py").to_str().unwrap(), &srv.url(), "smollm2"])
        .output()
        .unwrap();
    let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && so.contains("OK"), "{so}\n{se}\nserver:\n{}", srv.log());
    assert!(srv.log().contains("tool calls: the llama3_json format"), "{}", srv.log());
    srv.assert_pool_empty();
}

#[test]
fn openai_client_raw_http_errors_disconnects_overload_and_sigterm() {
    let _g = serial();
    let Some(model) = smollm2() else { return };
    let has_openai = Command::new("python3").args(["-c", "import openai"]).status().is_ok_and(|s| s.success());
    if !has_openai && std::env::var("TRTFORGE_REQUIRE_MODELS").as_deref() == Ok("1") {
        panic!("the `openai` Python package is missing (scripts/test.sh installs it)");
    }
    let prompt = "The capital of France is";
    let (expected, _) = generate_greedy(&model, prompt, 12);
    let srv = Server::start(
        &model,
        &["--max-num-seqs", "4", "--max-queue", "2", "--served-model-name", "smollm2", "--drain-timeout", "1"],
    );
    let port = srv.port;

    // The official client, streaming and not.
    if has_openai {
        let exp = serde_json::json!({"prompt": prompt, "max_tokens": 12, "text": expected}).to_string();
        let out = Command::new("python3")
            .args([root().join("tests/serve_openai.py").to_str().unwrap(), &srv.url(), "smollm2", &exp, &model])
            .output()
            .unwrap();
        let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(
            out.status.success()
                && so.contains("OK")
                && so.contains("logprobs:")
                && so.contains("logprobs text offsets")
                && so.contains("prompt logprobs:")
                && so.contains("logit_bias and penalties:")
                && so.contains("guided_regex:")
                && so.contains("guided_grammar:")
                && so.contains("json mode:")
                && so.contains("json schema:")
                && so.contains("tools:"),
            "openai client checks failed:\n{so}\n{se}\nserver:\n{}",
            srv.log()
        );
        srv.assert_pool_empty();
    } else {
        eprintln!("SKIP: the openai Python package is missing (pip install openai==3.51.0)");
    }

    // /tokenize and /detokenize (vLLM's endpoints) against transformers' tokenizer of the same GGUF.
    if py::have_modules(&["transformers", "gguf"]) {
        let out = py::run("tokenize_oracle.py", &[&srv.url(), &model, "smollm2"]);
        assert!(out.contains("OK"), "{out}");
    }

    // vLLM's stop_token_ids: the greedy text's second token ends the choice after one (finish_reason "stop", the
    // stop token not in the text), with ignore_eos too; an id outside the vocabulary, unsupported vLLM sampling
    // parameters (and implemented ones out of range) and a guided_json schema with a keyword it cannot enforce are 400s,
    // their neutral values are served.
    let (st, t) = post(port, "/tokenize", &serde_json::json!({"prompt": expected, "add_special_tokens": false}));
    assert_eq!(st, 200, "{t}");
    let ids: Vec<u64> = t["tokens"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
    assert!(ids.len() >= 2, "{t}");
    let (_, one) = post(port, "/detokenize", &serde_json::json!({"tokens": ids[..1]}));
    for ignore_eos in [false, true] {
        let (st, r) = post(
            port,
            "/v1/completions",
            &serde_json::json!({"prompt": prompt, "max_tokens": 12, "temperature": 0, "stop_token_ids": [ids[1]],
                                "ignore_eos": ignore_eos, "repetition_penalty": 1.0, "skip_special_tokens": true}),
        );
        assert_eq!(st, 200, "{r}");
        assert_eq!(r["choices"][0]["text"], one["prompt"], "{r}");
        assert_eq!(r["choices"][0]["finish_reason"], "stop", "{r}");
        assert!(r["usage"]["completion_tokens"].as_u64().unwrap() <= 2, "{r}");
    }
    for bad in [
        serde_json::json!({"prompt": prompt, "stop_token_ids": [49152]}),
        serde_json::json!({"prompt": prompt, "stop_token_ids": "2"}),
        serde_json::json!({"prompt": prompt, "repetition_penalty": 0}),
        serde_json::json!({"prompt": prompt, "min_p": -0.1}),
        serde_json::json!({"prompt": prompt, "max_tokens": 4, "min_tokens": 5}),
        serde_json::json!({"prompt": prompt, "min_tokens": 2, "response_format": {"type": "json_object"}}),
        serde_json::json!({"prompt": prompt, "length_penalty": 0.5}),
        serde_json::json!({"prompt": prompt, "guided_grammar": "root ::= \"a\" b"}),
        serde_json::json!({"prompt": prompt, "guided_regex": "(a)\\1"}),
        serde_json::json!({"prompt": prompt, "structured_outputs": {"regex": "a", "json_object": true}}),
        serde_json::json!({"prompt": prompt, "structured_outputs": {"whitespace_pattern": " "}}),
        serde_json::json!({"prompt": prompt, "guided_json": {"type": "string", "format": "email", "pattern": "@"}}),
    ] {
        let (st, r) = post(port, "/v1/completions", &bad);
        assert_eq!(st, 400, "{bad}: {r}");
    }

    // Health and models.
    assert_eq!(http(port, "GET", "/health", "").0, 200);
    let (st, models) = http(port, "GET", "/v1/models", "");
    assert_eq!(st, 200);
    assert!(models.contains("\"smollm2\""), "{models}");

    // Bad requests: OpenAI-style JSON errors with 4xx.
    let cases: &[(&str, &str, u16)] = &[
        ("/v1/completions", "{not json", 400),
        ("/v1/completions", "[1,2]", 400),
        ("/v1/completions", r#"{"model":"smollm2"}"#, 400),
        ("/v1/completions", r#"{"prompt":"hi","max_tokens":-3}"#, 400),
        ("/v1/completions", r#"{"prompt":"hi","temperature":NaN}"#, 400),
        ("/v1/completions", r#"{"prompt":"hi","temperature":"warm"}"#, 400),
        ("/v1/completions", r#"{"prompt":"hi","top_p":1.5}"#, 400),
        ("/v1/completions", r#"{"prompt":"hi","n":0}"#, 400),
        ("/v1/completions", r#"{"prompt":"hi","n":7}"#, 400),
        ("/v1/completions", r#"{"prompt":"hi","logit_bias":{"5":"one"}}"#, 400),
        ("/v1/completions", r#"{"prompt":"hi","logit_bias":{"99999999":1}}"#, 400),
        ("/v1/completions", r#"{"prompt":["hi",""],"max_tokens":2}"#, 400),
        ("/v1/completions", r#"{"prompt":"hi","stop":[1,2]}"#, 400),
        ("/v1/completions", r#"{"prompt":"","max_tokens":2}"#, 400),
        ("/v1/completions", r#"{"prompt":[999999999]}"#, 400),
        ("/v1/completions", r#"{"prompt":"hi","model":"../../etc/passwd"}"#, 404),
        ("/v1/completions", r#"{"prompt":"hi","max_tokens":100000}"#, 400),
        ("/v1/chat/completions", r#"{"messages":[]}"#, 400),
        ("/v1/chat/completions", r#"{"messages":[{"role":"user"}]}"#, 400),
        ("/v1/nope", "{}", 404),
    ];
    for (path, body, want) in cases {
        let (st, b) = http(port, "POST", path, body);
        assert_eq!(st, *want, "{path} {body} -> {st} {b}");
        let v: serde_json::Value = serde_json::from_str(&b).unwrap_or_else(|_| panic!("non-JSON error {b:?}"));
        assert!(v["error"]["message"].is_string() && v["error"]["type"].is_string(), "{b}");
    }
    let (st, b) = http(port, "POST", "/v1/completions", r#"{"prompt":"hi","max_tokens":100000}"#);
    assert!(st == 400 && b.contains("context_length_exceeded"), "{b}");
    // Prompts of megabytes (text and chat) are refused from the tokens of their beginning alone, not
    // tokenized whole (which took seconds and gigabytes), and the server keeps answering.
    for (path, body) in [
        ("/v1/completions", serde_json::json!({"prompt": "a ".repeat(3 << 20), "max_tokens": 1})),
        (
            "/v1/chat/completions",
            serde_json::json!({"messages": [{"role": "user", "content": "hello".repeat(1 << 20)}]}),
        ),
    ] {
        let (st, b) = http(port, "POST", path, &body.to_string());
        assert!(st == 400 && b.contains("context_length_exceeded") && b.contains("in its beginning alone"), "{b}");
    }
    assert_eq!(http(port, "GET", "/health", "").0, 200);
    let (st, b) = http(port, "GET", "/v1/completions", "");
    assert!(st == 405 && b.contains("\"error\"") && b.contains("POST"), "405 in the error shape: {b}");

    // Malformed HTTP: the server answers 400 or closes the connection, and keeps serving.
    for raw in [
        "GARBAGE\r\n\r\n",
        "POST /v1/completions HTTP/1.1\r\nContent-Length: zz\r\n\r\n",
        "\x00\x01\x02 / HTTP/9\r\n\r\n",
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let (st, _) = parse_response(&buf);
        assert!(buf.is_empty() || (400..500).contains(&st), "{raw:?} -> {:?}", String::from_utf8_lossy(&buf));
    }
    // A body shorter than its Content-Length, then a hang-up.
    {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"prompt\":").unwrap();
    }
    assert_eq!(http(port, "GET", "/health", "").0, 200);

    // Mid-stream disconnect: read a few chunks of a long generation, hang up; blocks are freed.
    let long = r#"{"prompt":"Tell me a long story.","max_tokens":400,"ignore_eos":true,"temperature":0,"stream":true}"#;
    let aborts_before = metrics(port)["trtforge_requests_total{outcome=\"abort\"}"];
    {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{long}",
            long.len()
        )
        .unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut n = 0;
        let mut line = String::new();
        while n < 3 {
            line.clear();
            assert!(r.read_line(&mut line).unwrap() > 0, "stream ended early");
            n += line.starts_with("data: ") as usize;
        }
        assert!(metrics(port)["trtforge_kv_blocks_used"] > 0.0);
    }
    let t = Instant::now();
    srv.assert_pool_empty();
    eprintln!("mid-stream disconnect freed the blocks in {:.0} ms", t.elapsed().as_secs_f64() * 1e3);
    assert!(metrics(port)["trtforge_requests_total{outcome=\"abort\"}"] > aborts_before);
    // Non-streaming disconnect: the request is cancelled too.
    {
        let body = long.replace(",\"stream\":true", "");
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }
    srv.assert_pool_empty();

    // Overload: 4 running + 2 queued fill the server; the next request gets 429, not a crash.
    let mut streams = Vec::new();
    for _ in 0..6 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{long}",
            long.len()
        )
        .unwrap();
        streams.push(s);
    }
    let t = Instant::now();
    while metrics(port)["trtforge_num_requests_running"] + metrics(port)["trtforge_num_requests_waiting"] < 6.0 {
        assert!(t.elapsed() < Duration::from_secs(20), "requests were not admitted");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut s429 = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let body = r#"{"prompt":"hi","max_tokens":2}"#;
    write!(
        s429,
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s429.read_to_end(&mut raw).unwrap();
    let (st, b) = parse_response(&raw);
    assert_eq!(st, 429, "{b}");
    // Clients back off by Retry-After.
    assert!(String::from_utf8_lossy(&raw).to_ascii_lowercase().contains("retry-after: 1"), "{b}");
    drop(streams);
    srv.assert_pool_empty();
    assert_eq!(http(port, "POST", "/v1/completions", r#"{"prompt":"hi","max_tokens":2}"#).0, 200);

    // SIGTERM: a running stream is ended (finish_reason "abort" after the 1 s drain), the
    // server exits cleanly within seconds.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{long}",
        long.len()
    )
    .unwrap();
    // Wait for the first token's SSE event (the headers alone come before the engine admits the
    // request, and a drain ends a request that is still queued with an error instead).
    let mut first = Vec::new();
    while !first.windows(6).any(|w| w == b"data: ") {
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "stream closed before its first token");
        first.extend_from_slice(&buf[..n]);
    }
    let mut srv = srv;
    let t = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &srv.child.id().to_string()]).status().unwrap().success());
    let mut rest = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.read_to_end(&mut rest);
    let status = loop {
        if let Some(st) = srv.child.try_wait().unwrap() {
            break st;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "server still running 10 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}: {}", srv.log());
    let (_, body) = parse_response(&[&first[..], &rest].concat());
    let data = sse_data(&body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{body}");
    assert!(body.contains("\"finish_reason\":\"abort\""), "{body}");
    eprintln!("SIGTERM to exit: {:.2} s", t.elapsed().as_secs_f64());
}

#[test]
fn tiny_model_batch_invariance_and_soak_with_cancellations() {
    let _g = serial();
    let srv = Server::start(
        &tiny(),
        &["--kv-cache-memory", "2MiB", "--max-num-seqs", "64", "--max-num-batched-tokens", "128"],
    );
    let port = srv.port;
    let prompt =
        |i: usize| -> Vec<u32> { (0..(3 + (i * 7) % 40)).map(|j| ((i * 13 + j * 5) % 380) as u32 + 2).collect() };
    // 64 greedy requests at once equal each alone (token-id prompts, exact text).
    let alone: Vec<String> = (0..64)
        .map(|i| {
            let (st, v) = post(
                port,
                "/v1/completions",
                &serde_json::json!({"prompt": prompt(i), "max_tokens": 24, "temperature": 0, "ignore_eos": true}),
            );
            assert_eq!(st, 200, "{v}");
            v["choices"][0]["text"].as_str().unwrap().to_string()
        })
        .collect();
    let handles: Vec<_> = (0..64)
        .map(|i| {
            let body = serde_json::json!({"prompt": prompt(i), "max_tokens": 24, "temperature": 0, "ignore_eos": true});
            std::thread::spawn(move || post(port, "/v1/completions", &body))
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let (st, v) = h.join().unwrap();
        assert_eq!(st, 200);
        assert_eq!(v["choices"][0]["text"].as_str().unwrap(), alone[i], "request {i}");
    }
    srv.assert_pool_empty();

    // Soak: 500 short requests from 16 clients, a third of them cancelled at random points.
    let status = |pid: u32, key: &str| -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0)
    };
    let pid = srv.child.id();
    let (threads0, rss0) = (status(pid, "Threads:"), status(pid, "VmRSS:"));
    let workers: Vec<_> = (0..16u64)
        .map(|w| {
            std::thread::spawn(move || {
                let mut rng = w.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let mut next = || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                let mut ok = 0;
                for k in 0..(500 / 16 + (w < 500 % 16) as u64) {
                    let i = (w * 1000 + k) as usize;
                    let stream = next() % 2 == 0;
                    let body = serde_json::json!({
                        "prompt": prompt(i), "max_tokens": 1 + next() % 48, "temperature": 0.8, "seed": i,
                        "stream": stream, "ignore_eos": next() % 2 == 0,
                    })
                    .to_string();
                    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                    write!(s, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
                    if next() % 3 == 0 {
                        // Cancel: hang up after a random number of bytes (possibly none).
                        let mut buf = vec![0u8; (next() % 400) as usize];
                        let _ = s.read_exact(&mut buf);
                        continue;
                    }
                    let mut raw = Vec::new();
                    s.read_to_end(&mut raw).unwrap();
                    let (st, b) = parse_response(&raw);
                    assert_eq!(st, 200, "{b}");
                    if stream {
                        assert_eq!(sse_data(&b).last().map(String::as_str), Some("[DONE]"));
                    }
                    ok += 1;
                }
                ok
            })
        })
        .collect();
    let ok: usize = workers.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(ok > 250, "{ok} requests completed");
    srv.assert_pool_empty();
    let m = metrics(port);
    let finished = m["trtforge_requests_total{outcome=\"stop\"}"] + m["trtforge_requests_total{outcome=\"length\"}"];
    assert!(finished >= ok as f64 + 128.0, "{finished} finished, {ok} read back");
    // Idle blocking-pool threads (request parsing) exit after tokio's 10 s keep-alive: a leak is what stays.
    let t = Instant::now();
    while status(pid, "Threads:") > threads0 + 2 && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(250));
    }
    let (threads1, rss1) = (status(pid, "Threads:"), status(pid, "VmRSS:"));
    eprintln!("soak: {ok} completed; threads {threads0} -> {threads1}; RSS {rss0} -> {rss1} kB");
    assert!(threads1 <= threads0 + 2, "threads grew from {threads0} to {threads1}");
    assert!(rss1 < rss0 + 64 * 1024, "RSS grew from {rss0} kB to {rss1} kB");
}

#[test]
fn bench_serve_against_a_running_server() {
    let _g = serial();
    let Some(texts) = model_file("shakespeare") else { return };
    // --tokenizer (here the model's own tokenizer.json) replaces the model's tokenizer.
    let tok = fixture("tiny_llama/tokenizer.json").to_str().unwrap().to_string();
    let srv =
        Server::start(&tiny(), &["--kv-cache-memory", "4MiB", "--served-model-name", "tiny", "--tokenizer", &tok]);
    let out = tempfile::tempdir().unwrap();
    let res = Command::new(env!("CARGO_BIN_EXE_trtforge"))
        .args(["bench", "serve", "--url", &srv.url(), "--num-prompts", "24", "--request-rates", "30,inf"])
        .args(["--concurrency", "3", "--max-prompt-words", "40", "--max-output-tokens", "24", "--warmup", "1"])
        .args(["--texts", texts.to_str().unwrap(), "--out", out.path().to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "bench serve failed: {err}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("serve_results.json")).unwrap()).unwrap();
    assert_eq!(v["model"], "tiny");
    let levels = v["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 3);
    for l in levels {
        assert_eq!(l["completed"], 24, "{l}");
        assert!(l["output_tok_s"].as_f64().unwrap() > 0.0 && l["ttft_ms"]["p99"].as_f64().unwrap() > 0.0, "{l}");
        assert!(l["itl_ms"]["p50"].as_f64().unwrap() >= 0.0 && l["e2e_ms"]["p90"].as_f64().unwrap() > 0.0, "{l}");
    }
    // The server generated at least the tokens the client counted (plus the warm-up's).
    let seen: u64 = levels.iter().map(|l| l["output_tokens"].as_u64().unwrap()).sum();
    assert!(metrics(srv.port)["trtforge_generation_tokens_total"] as u64 >= seen);
    assert!(std::fs::read_to_string(out.path().join("serve_report.md")).unwrap().contains("| concurrency 3 |"));
    assert!(std::fs::read_to_string(out.path().join("serve_latency.svg")).unwrap().contains("<svg"));
    srv.assert_pool_empty();
}

#[test]
fn eight_bit_kv_cache_for_a_model_run() {
    let _g = serial();
    // --kv-cache int8 on a --model run: calibrated per-head scales, the CPU reference rounds as the
    // GPU kernels do; the log names the format and /metrics the peak batch.
    let srv = Server::start(&tiny(), &["--kv-cache", "int8", "--kv-cache-memory", "2MiB"]);
    assert!(srv.log().contains("KV cache int8 (calibrated"), "{}", srv.log());
    // The fixture (2 layers, 2 kv heads of 16 dims): K and V at 1 byte = 128 bytes a token as the GPU
    // stores them, while the CPU pool holds the rounded values as f32 (512), and says so.
    assert!(
        srv.log().contains("at 128 bytes per token (the cpu backend's pool holds 512 bytes per token)"),
        "{}",
        srv.log()
    );
    let body = serde_json::json!({"prompt": [5, 6, 7, 8], "max_tokens": 8, "temperature": 0, "ignore_eos": true});
    let (st, v) = post(srv.port, "/v1/completions", &body);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["usage"]["completion_tokens"], 8, "{v}");
    let m = metrics(srv.port);
    assert!(m["trtforge_num_requests_running_max"] >= 1.0 && m["trtforge_kv_blocks_used_max"] >= 1.0, "{m:?}");
    srv.assert_pool_empty();
    drop(srv);
    // --kv-cache fp8 does what a config's `kv_cache: fp8` does: K centred and rotated where the
    // heads fit (SmolLM2's 64), plain where they do not (the fixture's 16); the real model still
    // answers what its float reference does (MODELS.md's sanity check: "... is Paris").
    let srv = Server::start(&tiny(), &["--kv-cache", "fp8", "--kv-cache-memory", "2MiB"]);
    assert!(srv.log().contains("KV cache fp8 (calibrated)"), "{}", srv.log());
    drop(srv);
    let Some(model) = smollm2() else { return };
    let srv = Server::start(&model, &["--kv-cache", "fp8", "--served-model-name", "smollm2"]);
    assert!(srv.log().contains("KV cache fp8 (calibrated, smooth + rotated K)"), "{}", srv.log());
    let body = serde_json::json!({"model": "smollm2", "temperature": 0, "max_tokens": 12,
        "messages": [{"role": "user", "content": "What is the capital of France?"}]});
    let (st, v) = post(srv.port, "/v1/chat/completions", &body);
    assert_eq!(st, 200, "{v}");
    let text = v["choices"][0]["message"]["content"].as_str().unwrap_or_default();
    assert!(text.contains("Paris"), "{v}");
    srv.assert_pool_empty();
}

#[test]
fn bad_serve_options_are_clear_errors() {
    let fails = |args: &[&str], want: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_trtforge")).arg("serve").args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        assert!(err.contains(want), "{args:?}: expected {want:?} in {err}");
    };
    let t = tiny();
    fails(&["--model", &t, "--backend", "ort", "--port", "0"], "serve with --backend cpu or cuda");
    if trtforge::backend::cuda::gpu::probe().is_err() {
        // No GPU here: a clear error, no panic (on a GPU machine this would serve).
        fails(&["--model", &t, "--backend", "cuda", "--port", "0"], "GPU");
    }
    // A tokenizer for a model without one must fit its vocabulary (preset:tiny has 256 ids).
    let spm = fixture("llama_spm_vocab/ggml-vocab-llama-spm.gguf").to_str().unwrap().to_string();
    fails(&["--model", "preset:tiny", "--tokenizer", &spm, "--port", "0"], "more than the model's vocabulary of 256");
    fails(
        &["--model", "preset:tiny", "--tokenizer", "/nonexistent/tok.json", "--port", "0"],
        "cannot read the tokenizer",
    );
    fails(&["--model", &t, "--kv-cache-memory", "100", "--port", "0"], "holds no block");
    fails(&["--model", &t, "--kv-cache-memory", "lots", "--port", "0"], "not a size");
    // A pool beyond the machine's memory is refused up front (it aborted in the allocator).
    fails(&["--model", &t, "--kv-cache-memory", "10000GB", "--port", "0"], "more than this machine's");
    fails(&["--model", &t, "--max-num-seqs", "0", "--port", "0"], "--max-num-seqs");
    fails(&["--model", &t, "--max-model-len", "100000", "--port", "0"], "beyond the model's context of 512");
    fails(&["--model", &t, "--served-model-name", "", "--port", "0"], "--served-model-name must not be empty");
    fails(&["--model", &t, "--kv-cache", "fp4", "--port", "0"], "not a KV cache format: use fp16, fp8 or int8");
    fails(&["--engine-dir", &t, "--kv-cache", "fp8", "--port", "0"], "--kv-cache");
    fails(
        &["--model", &t, "--gpu-memory-utilization", "0.5", "--port", "0"],
        "the cpu backend takes --kv-cache-memory",
    );
    fails(&["--model", &t, "--backend", "cuda", "--gpu-memory-utilization", "1.5", "--port", "0"], "(0, 1]");
    fails(&["--model", "/nonexistent/model.gguf", "--port", "0"], "/nonexistent/model.gguf");
    fails(&["--model", "preset:tiny", "--port", "0"], "--tokenizer FILE");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    fails(&["--model", &t, "--port", &port], "cannot listen");
    // `bench serve`: an empty output-length range (it panicked in clamp), and --texts given a file.
    let url = format!("http://127.0.0.1:{port}");
    let bench = |args: &[&str], want: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_trtforge"))
            .args(["bench", "serve", "--url", &url])
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && !err.contains("panicked") && err.contains(want), "{args:?}: {err}");
    };
    bench(&["--max-output-tokens", "4"], "--min-output-tokens 8 is above --max-output-tokens 4");
    bench(&["--texts", &fixture("tiny_tokenizer.json").to_string_lossy()], "takes a folder");
}

/// Slow or silent clients cannot hold the server: a connection that never finishes its headers, or sends none, is
/// closed after the header timeout (15 s) while /health answers beside 64 of them; a body that stops arriving gets
/// 408 in OpenAI's error shape; a second SIGINT during the drain exits at once (130); a server whose stderr is a
/// closed pipe still drains and exits on SIGTERM.
#[test]
fn slow_clients_second_signal_and_broken_stderr() {
    let _g = serial();
    let Some(model) = smollm2() else { return };
    let srv = Server::start(&model, &["--drain-timeout", "120"]);
    let port = srv.port;
    let t0 = Instant::now();
    let mut silent: Vec<TcpStream> = (0..64)
        .map(|i| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            if i % 2 == 0 {
                s.write_all(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n").unwrap();
            }
            s
        })
        .collect();
    let mut trickle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    trickle
        .write_all(
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 99\r\n\r\n{\"pr",
        )
        .unwrap();
    assert_eq!(http(port, "GET", "/health", "").0, 200);
    for s in &mut silent {
        s.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap_or(usize::MAX);
        assert_eq!(n, 0, "a silent connection was not closed");
    }
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_secs(10) && waited < Duration::from_secs(40), "closed after {waited:?}");
    trickle.set_read_timeout(Some(Duration::from_secs(90))).unwrap();
    let mut raw = Vec::new();
    let _ = trickle.read_to_end(&mut raw);
    let (st, body) = parse_response(&raw);
    assert_eq!(st, 408, "{body}");
    assert!(body.contains("\"error\""), "{body}");

    // A long stream in flight (4,000 tokens), then SIGINT twice: the first starts a 120 s drain, the second
    // exits now.
    // (max_tokens given: /v1/completions' default of 16 tokens can finish before the first signal.)
    let long = r#"{"prompt": "Once upon a time", "stream": true, "ignore_eos": true, "max_tokens": 4000}"#;
    let stream = std::thread::spawn(move || http(port, "POST", "/v1/completions", long));
    std::thread::sleep(Duration::from_millis(1500));
    let pid = srv.child.id().to_string();
    let t1 = Instant::now();
    let mut srv = srv;
    for _ in 0..2 {
        assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
        std::thread::sleep(Duration::from_millis(500));
        assert!(srv.child.try_wait().unwrap().is_none() || t1.elapsed() > Duration::from_millis(900));
    }
    let code = loop {
        if let Some(st) = srv.child.try_wait().unwrap() {
            break st.code();
        }
        assert!(t1.elapsed() < Duration::from_secs(20), "still running after two SIGINTs:\n{}", srv.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(code, Some(130), "{}", srv.log());
    assert!(srv.log().contains("second signal"), "{}", srv.log());
    let _ = stream.join();

    // stderr closed after the start lines: SIGTERM still drains (2 s) and the server exits 0.
    let mut child = Command::new(env!("CARGO_BIN_EXE_trtforge"))
        .args(["serve", "--model", &model, "--host", "127.0.0.1", "--port", "0", "--drain-timeout", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let port = loop {
        let line = lines.next().expect("the server exited before listening").unwrap();
        if let Some(addr) = line.strip_prefix("listening on http://") {
            break addr.rsplit(':').next().unwrap().parse::<u16>().unwrap();
        }
    };
    drop(lines);
    let short = r#"{"prompt": "Once upon a time", "stream": true, "ignore_eos": true, "max_tokens": 8}"#;
    let stream = std::thread::spawn(move || http(port, "POST", "/v1/completions", short));
    std::thread::sleep(Duration::from_millis(1500));
    let t2 = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if t2.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("a server with a closed stderr did not stop 20 s after SIGTERM (drain 2 s)");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(code, Some(0));
    let (st, body) = stream.join().unwrap();
    assert_eq!(st, 200);
    assert!(body.contains("[DONE]"), "{body}");
}

/// Reads one HTTP response off a kept-alive connection: (status line, lower-cased head, body, with a chunked body
/// decoded); a body with neither length nor chunking runs to the end of the connection (HTTP/1.0).
fn read_response(r: &mut BufReader<TcpStream>) -> (String, String, String) {
    read_response_to(r, false)
}

/// [`read_response`] of a request that was `HEAD` or not (a HEAD response has no body, whatever its length says).
fn read_response_to(r: &mut BufReader<TcpStream>, head_request: bool) -> (String, String, String) {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        assert!(r.read_line(&mut line).unwrap() > 0, "connection closed in the head: {head}");
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let lower = head.to_ascii_lowercase();
    let status = head.lines().next().unwrap().to_string();
    let header = |k: &str| lower.lines().find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_string());
    let mut body = Vec::new();
    if head_request {
    } else if header("transfer-encoding:").as_deref() == Some("chunked") {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).unwrap();
            body.extend_from_slice(&chunk[..n]);
            if n == 0 {
                break;
            }
        }
    } else if let Some(n) = header("content-length:") {
        body.resize(n.parse().unwrap(), 0);
        r.read_exact(&mut body).unwrap();
    } else if !status.contains(" 204 ") && !status.contains(" 100 ") {
        r.read_to_end(&mut body).unwrap();
    }
    (status, lower, String::from_utf8(body).unwrap())
}

/// What other clients do at the HTTP level, on one server whose name has a slash (as HF ids do): the official
/// `openai` Node.js client (tests/serve_openai_node.cjs), HEAD, HTTP/1.0, `Expect: 100-continue` (curl sends it for
/// bodies over 1 KiB), chunked request bodies, several requests on one kept-alive connection, a browser's CORS
/// preflight (any origin by default, as vLLM; --allowed-origins restricts), an empty model name (the served one).
#[test]
fn node_client_http_details_and_cors() {
    let _g = serial();
    let Some(model) = smollm2() else { return };
    let name = "HuggingFaceTB/SmolLM2-135M-Instruct";
    let srv = Server::start(&model, &["--served-model-name", name, "--max-num-seqs", "4"]);
    let port = srv.port;
    let prompt = "The capital of France is";
    let (st, r) =
        post(port, "/v1/completions", &serde_json::json!({"prompt": prompt, "max_tokens": 8, "temperature": 0}));
    assert_eq!(st, 200, "{r}");
    let text = r["choices"][0]["text"].as_str().unwrap().to_string();

    // The Node.js client, installed by scripts/test.sh under target/npm (NODE_PATH).
    let node_path = root().join("target/npm/node_modules");
    let node = |args: &[&str]| Command::new("node").args(args).env("NODE_PATH", &node_path).output();
    if node(&["-e", "require('openai')"]).is_ok_and(|o| o.status.success()) {
        let exp = serde_json::json!({"prompt": prompt, "max_tokens": 8, "text": text}).to_string();
        let out =
            node(&[root().join("tests/serve_openai_node.cjs").to_str().unwrap(), &srv.url(), name, &exp]).unwrap();
        let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(
            out.status.success() && so.contains("OK"),
            "Node openai client checks failed:\n{so}\n{se}\n{}",
            srv.log()
        );
        srv.assert_pool_empty();
    } else {
        skip("node or the `openai` npm package is missing (scripts/test.sh installs it under target/npm)");
    }

    // The model by its name, the slash sent escaped or not; an empty model name is the served model.
    for path in ["/v1/models/HuggingFaceTB/SmolLM2-135M-Instruct", "/v1/models/HuggingFaceTB%2FSmolLM2-135M-Instruct"] {
        let (st, b) = http(port, "GET", path, "");
        assert!(st == 200 && b.contains(&format!("\"id\":\"{name}\"")), "{path}: {st} {b}");
    }
    assert_eq!(http(port, "GET", "/v1/models/HuggingFaceTB/other", "").0, 404);
    let (st, b) = http(port, "GET", "/v1/models/%FF%FE", "");
    assert!(st == 400 && b.contains("\"error\""), "a name that is not UTF-8: {st} {b}");
    let (st, r) = post(
        port,
        "/v1/completions",
        &serde_json::json!({"model": "", "prompt": prompt, "max_tokens": 8, "temperature": 0}),
    );
    assert!(st == 200 && r["choices"][0]["text"] == text.as_str() && r["model"] == name, "{r}");
    assert!(r.as_object().unwrap().contains_key("system_fingerprint"), "{r}");

    let connect = || {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        (s.try_clone().unwrap(), BufReader::new(s))
    };
    let body = serde_json::json!({"prompt": prompt, "max_tokens": 8, "temperature": 0}).to_string();
    let stream_body =
        serde_json::json!({"prompt": prompt, "max_tokens": 8, "temperature": 0, "stream": true}).to_string();
    let text_of = |b: &str| serde_json::from_str::<serde_json::Value>(b).unwrap()["choices"][0]["text"].clone();
    let streamed_text = |b: &str| {
        let data = sse_data(b);
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{b}");
        data[..data.len() - 1].iter().map(|d| text_of(d).as_str().unwrap().to_string()).collect::<String>()
    };

    // One kept-alive connection: a completion, a stream, HEAD /health, a chunked request body, and
    // Expect: 100-continue (the 100 before the body, then the answer).
    let (mut w, mut r) = connect();
    write!(w, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let (st, _, b) = read_response(&mut r);
    assert!(st.contains(" 200 ") && text_of(&b) == text.as_str(), "{st} {b}");
    write!(w, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{stream_body}", stream_body.len())
        .unwrap();
    let (st, head, b) = read_response(&mut r);
    assert!(st.contains(" 200 ") && head.contains("text/event-stream") && streamed_text(&b) == text, "{st} {b}");
    write!(w, "HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (st, _, b) = read_response_to(&mut r, true);
    assert!(st.contains(" 200 ") && b.is_empty(), "{st} {b}");
    let (half1, half2) = body.split_at(body.len() / 2);
    write!(
        w,
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{half1}\r\n{:x}\r\n{half2}\r\n0\r\n\r\n",
        half1.len(),
        half2.len()
    )
    .unwrap();
    let (st, _, b) = read_response(&mut r);
    assert!(st.contains(" 200 ") && text_of(&b) == text.as_str(), "chunked request body: {st} {b}");
    write!(
        w,
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let (st, _, _) = read_response(&mut r);
    assert!(st.contains(" 100 "), "no 100 Continue before the body: {st}");
    w.write_all(body.as_bytes()).unwrap();
    let (st, _, b) = read_response(&mut r);
    assert!(st.contains(" 200 ") && text_of(&b) == text.as_str(), "after 100-continue: {st} {b}");

    // HTTP/1.0: a whole response, and a stream that ends with the connection.
    for (b, stream) in [(&body, false), (&stream_body, true)] {
        let (mut w, mut r) = connect();
        write!(w, "POST /v1/completions HTTP/1.0\r\nContent-Length: {}\r\n\r\n{b}", b.len()).unwrap();
        let (st, _, got) = read_response(&mut r);
        assert!(st.starts_with("HTTP/1.0 200 "), "{st}");
        assert_eq!(if stream { streamed_text(&got).into() } else { text_of(&got) }, text.as_str(), "{got}");
    }

    // CORS: a browser's preflight, then the request; a request without Origin gets no CORS headers.
    let (mut w, mut r) = connect();
    write!(
        w,
        "OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: x\r\nOrigin: http://localhost:3000\r\nAccess-Control-Request-Method: POST\r\n\
         Access-Control-Request-Headers: authorization,content-type,x-stainless-os\r\n\r\n"
    )
    .unwrap();
    let (st, head, _) = read_response(&mut r);
    assert!(st.contains(" 204 "), "{st} {head}");
    for h in [
        "access-control-allow-origin: *",
        "access-control-allow-headers: authorization,content-type,x-stainless-os",
        "access-control-allow-methods: get, post, head, options",
    ] {
        assert!(head.contains(h), "preflight without {h:?}: {head}");
    }
    write!(
        w,
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nOrigin: http://localhost:3000\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let (st, head, _) = read_response(&mut r);
    assert!(st.contains(" 200 ") && head.contains("access-control-allow-origin: *"), "{st} {head}");
    write!(w, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(!read_response(&mut r).1.contains("access-control"), "CORS headers without an Origin");
    srv.assert_pool_empty();
    drop(srv);

    // --allowed-origins: the listed origin is echoed (with Vary), another's preflight is a 403 in the error shape.
    let srv = Server::start(&tiny(), &["--allowed-origins", "http://localhost:3000,https://app.example"]);
    for (origin, want) in [("https://app.example", 204), ("http://evil.example", 403)] {
        let s = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        write!(&s, "OPTIONS /v1/completions HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\n\r\n")
            .unwrap();
        let (st, head, b) = read_response(&mut r);
        assert!(st.contains(&format!(" {want} ")), "{origin}: {st} {head}");
        if want == 204 {
            assert!(
                head.contains(&format!("access-control-allow-origin: {origin}")) && head.contains("vary: origin"),
                "{head}"
            );
        } else {
            assert!(!head.contains("access-control-allow-origin") && b.contains("\"error\""), "{head} {b}");
        }
    }
}
