//! `trtforge bench serve`: an open-loop load generator for any OpenAI-compatible server.
//!
//! Requests go to `/v1/completions` with `stream: true` at a Poisson rate (open loop: arrivals
//! never wait for the server) or from a fixed number of concurrent clients. Prompts and output
//! lengths come from the bundled Shakespeare texts: a prompt is one or more consecutive speeches,
//! the output length is the length of the speech that follows (capped), generated exactly
//! (`ignore_eos`). Per load level it reports request throughput, output tok/s, TTFT / ITL /
//! end-to-end p50 / p90 / p99, and goodput (requests per second meeting the TTFT and TPOT SLO).
use super::metrics::percentile_sorted;
use crate::error::{Error, Result};
use crate::util::SplitMix64;
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Version of `serve_results.json`.
pub const SERVE_RESULTS_SCHEMA_VERSION: u32 = 1;
/// Rough tokens per English word, used only to size prompts (actual counts come from `usage`).
const TOKENS_PER_WORD: f64 = 1.3;

/// One load level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Load {
    /// Poisson arrivals at this many requests per second (infinite: all at once).
    Rate(f64),
    /// This many clients, each sending its next request when the previous one ends.
    Concurrency(usize),
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Load::Rate(r) if r.is_infinite() => write!(f, "rate inf"),
            Load::Rate(r) => write!(f, "rate {r} req/s"),
            Load::Concurrency(c) => write!(f, "concurrency {c}"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServeBenchSettings {
    /// Server base URL, e.g. http://127.0.0.1:8000 (plain HTTP).
    pub url: String,
    /// Model name sent in requests (default: the first of /v1/models).
    pub model: Option<String>,
    pub loads: Vec<Load>,
    /// Requests per load level.
    pub num_prompts: usize,
    /// Requests sent (at concurrency 1) before measuring; not reported.
    pub warmup: usize,
    #[serde(serialize_with = "super::lossy::one")]
    pub texts: PathBuf,
    pub max_prompt_words: usize,
    pub min_output_tokens: usize,
    pub max_output_tokens: usize,
    /// Every request generates exactly this many tokens (overrides the drawn lengths).
    pub fixed_output_tokens: Option<usize>,
    pub slo_ttft_ms: f64,
    /// Time per output token (mean inter-token latency of a request).
    pub slo_tpot_ms: f64,
    pub seed: u64,
    pub timeout_s: f64,
}

/// p50 / p90 / p99 (and mean) in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

impl Percentiles {
    fn of_ms(xs: &[f64]) -> Option<Self> {
        if xs.is_empty() {
            return None;
        }
        let mut v: Vec<f64> = xs.iter().map(|x| x * 1e3).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        Some(Percentiles {
            mean: v.iter().sum::<f64>() / v.len() as f64,
            p50: percentile_sorted(&v, 50.0),
            p90: percentile_sorted(&v, 90.0),
            p99: percentile_sorted(&v, 99.0),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LevelResult {
    pub load: Load,
    pub completed: usize,
    pub failed: usize,
    /// First error messages, for the report.
    pub errors: Vec<String>,
    pub duration_s: f64,
    pub request_throughput: f64,
    pub output_tok_s: f64,
    pub total_tok_s: f64,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    pub ttft_ms: Option<Percentiles>,
    pub itl_ms: Option<Percentiles>,
    pub tpot_ms: Option<Percentiles>,
    pub e2e_ms: Option<Percentiles>,
    /// Requests per second that met both SLOs.
    pub goodput: f64,
    pub slo_attainment: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServeBenchResults {
    pub schema_version: u32,
    pub trtforge_version: String,
    pub command: String,
    pub started_unix: u64,
    pub model: String,
    pub settings: ServeBenchSettings,
    pub levels: Vec<LevelResult>,
    /// Each fixed-concurrency level beside the static `trtforge bench` row at that batch
    /// (`--static-json`), for issue #12's throughput target.
    #[serde(default)]
    pub static_comparison: Vec<StaticComparison>,
    /// This run's id, which every file of its report carries (`report::new_run_id`).
    #[serde(default)]
    pub run_id: String,
}

/// Issue #12's throughput target, stated as asked: output tok/s at a concurrency of N streams
/// against the static `trtforge bench` figure at batch N for the same model, prompt and output
/// lengths, ≥ 0.9×. Both static rates are given: the decode rate (the figure `bench` reports; it
/// leaves the prefill out) and the end-to-end rate (N × new tokens / (TTFT of the N prompts +
/// (new − 1) decode steps)), which like serving includes the prefill.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StaticComparison {
    /// The static JSON it came from.
    pub source: String,
    pub load: Load,
    pub serve_output_tok_s: f64,
    /// Mean prompt and output tokens of the serve level's requests.
    pub serve_prompt_tokens: f64,
    pub serve_output_tokens: f64,
    pub precision: String,
    pub batch: usize,
    pub static_prompt_len: usize,
    pub static_new_tokens: usize,
    pub static_decode_tok_s: f64,
    pub static_e2e_tok_s: f64,
    pub ratio_vs_decode: f64,
    pub ratio_vs_e2e: f64,
    /// The bound on either ratio (0.9).
    pub target: f64,
    /// Where the static run differs from the serve level (prompt or output length).
    pub mismatch: Vec<String>,
}

/// Issue #12's ratio bound.
pub const STATIC_TARGET: f64 = 0.9;

/// Compares every concurrency level of `r` with the row of the static `trtforge bench --json`
/// document `doc` at batch = concurrency (and `precision`, if given; else the first at that batch),
/// taking the run whose prompt length is closest to the level's mean prompt.
pub fn compare_static(
    r: &ServeBenchResults,
    doc: &serde_json::Value,
    source: &str,
    precision: Option<&str>,
) -> Result<Vec<StaticComparison>> {
    let runs = doc
        .get("runs")
        .and_then(|v| v.as_array())
        .ok_or_else(|| Error::Invalid(format!("{source}: not a `trtforge bench --json` file (no \"runs\" array)")))?;
    let mut out = Vec::new();
    for l in &r.levels {
        let Load::Concurrency(c) = l.load else { continue };
        if l.completed == 0 {
            continue;
        }
        let prompt = l.prompt_tokens as f64 / l.completed as f64;
        let output = l.output_tokens as f64 / l.completed as f64;
        let mut best: Option<(f64, &serde_json::Value)> = None;
        for row in runs.iter().filter_map(|run| run.get("rows")?.as_array()).flatten() {
            let batch = row.get("batch").and_then(|v| v.as_u64()).unwrap_or(0) as usize;
            let prec = row.get("precision").and_then(|v| v.as_str()).unwrap_or("");
            if batch != c || precision.is_some_and(|p| p != prec) {
                continue;
            }
            let plen = row.get("prompt_len").and_then(|v| v.as_f64()).unwrap_or(f64::INFINITY);
            let d = (plen - prompt).abs();
            if best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, row));
            }
        }
        let Some((_, row)) = best else { continue };
        let f = |k: &str| row.get(k).and_then(|v| v.as_f64());
        let (Some(decode), Some(step_ms), Some(ttft_ms), Some(new), Some(plen)) =
            (f("decode_tok_s"), f("step_ms"), f("ttft_ms"), f("new_tokens"), f("prompt_len"))
        else {
            return Err(Error::Invalid(format!(
                "{source}: a batch-{c} row lacks decode_tok_s / step_ms / ttft_ms / new_tokens / prompt_len"
            )));
        };
        let e2e = c as f64 * new / ((ttft_ms + (new - 1.0).max(0.0) * step_ms) / 1e3);
        let mut mismatch = Vec::new();
        if (plen - prompt).abs() > 0.25 * prompt.max(1.0) {
            mismatch.push(format!("static prompt {plen:.0} tokens vs serve mean {prompt:.1}"));
        }
        if (new - output).abs() > 0.5 {
            mismatch.push(format!("static {new:.0} new tokens vs serve mean {output:.1}"));
        }
        out.push(StaticComparison {
            source: source.to_string(),
            load: l.load,
            serve_output_tok_s: l.output_tok_s,
            serve_prompt_tokens: prompt,
            serve_output_tokens: output,
            precision: row.get("precision").and_then(|v| v.as_str()).unwrap_or("?").to_string(),
            batch: c,
            static_prompt_len: plen as usize,
            static_new_tokens: new as usize,
            static_decode_tok_s: decode,
            static_e2e_tok_s: e2e,
            ratio_vs_decode: l.output_tok_s / decode,
            ratio_vs_e2e: l.output_tok_s / e2e,
            target: STATIC_TARGET,
            mismatch,
        });
    }
    Ok(out)
}

/// One line per comparison, for the console and the report.
pub fn static_lines(r: &ServeBenchResults) -> Vec<String> {
    let ok = |x: f64| if x >= STATIC_TARGET { "met" } else { "not met" };
    r.static_comparison
        .iter()
        .map(|c| {
            format!(
                "{}: {:.0} output tok/s vs static `bench` {} batch {} (prompt {}, {} new; {}): {:.3}× the static decode rate {:.0} tok/s ({}), {:.3}× the static end-to-end rate {:.0} tok/s incl. prefill ({}); target ≥ {:.2}×{}",
                c.load,
                c.serve_output_tok_s,
                c.precision,
                c.batch,
                c.static_prompt_len,
                c.static_new_tokens,
                c.source,
                c.ratio_vs_decode,
                c.static_decode_tok_s,
                ok(c.ratio_vs_decode),
                c.ratio_vs_e2e,
                c.static_e2e_tok_s,
                ok(c.ratio_vs_e2e),
                c.target,
                if c.mismatch.is_empty() { String::new() } else { format!(" [differs: {}]", c.mismatch.join("; ")) }
            )
        })
        .collect()
}

/// One request to send.
#[derive(Debug, Clone)]
struct Job {
    prompt: String,
    max_tokens: usize,
}

/// What one streamed request measured.
#[derive(Debug, Default)]
struct Outcome {
    ok: bool,
    error: Option<String>,
    ttft: Option<f64>,
    itls: Vec<f64>,
    e2e: f64,
    prompt_tokens: u64,
    output_tokens: u64,
}

/// Speeches (blank-line separated paragraphs) of every `.txt` file in `dir`, whitespace-normalized.
fn load_speeches(dir: &Path) -> Result<Vec<String>> {
    if dir.is_file() {
        return Err(Error::Invalid(format!(
            "--texts {} is a file: it takes a folder of .txt files (blank-line separated paragraphs)",
            dir.display()
        )));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in &files {
        let text = crate::util::read_text(f, None)?;
        for para in text.split("\n\n") {
            let words: Vec<&str> = para.split_whitespace().collect();
            if words.len() >= 3 {
                out.push(words.join(" "));
            }
        }
    }
    if out.len() < 2 {
        return Err(Error::Invalid(format!(
            "{} has no usable texts (*.txt with blank-line separated paragraphs); run scripts/fetch_models.sh or pass --texts",
            dir.display()
        )));
    }
    Ok(out)
}

/// Prompts and output lengths drawn from the texts with a seeded generator.
fn make_jobs(s: &ServeBenchSettings, speeches: &[String], n: usize, seed: u64) -> Vec<Job> {
    let mut rng = SplitMix64(seed);
    (0..n)
        .map(|_| {
            let start = (rng.next_u64() % (speeches.len() as u64 - 1)) as usize;
            // Consecutive speeches until the prompt has at least 16 words (or the cap).
            let mut words: Vec<&str> = Vec::new();
            let mut i = start;
            while words.len() < 16 && i < speeches.len() - 1 {
                words.extend(speeches[i].split(' '));
                i += 1;
            }
            words.truncate(s.max_prompt_words.max(1));
            let reply_words = speeches[i.min(speeches.len() - 1)].split(' ').count();
            let drawn = (reply_words as f64 * TOKENS_PER_WORD).round() as usize;
            let max_tokens = s
                .fixed_output_tokens
                .unwrap_or_else(|| drawn.clamp(s.min_output_tokens.max(1), s.max_output_tokens.max(1)));
            Job { prompt: words.join(" "), max_tokens }
        })
        .collect()
}

/// `http://host:port` → (host:port, base path).
fn parse_url(url: &str) -> Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| Error::Invalid(format!("--url must start with http:// (TLS is not supported), got {url:?}")))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(Error::Invalid(format!("--url {url:?} has no host")));
    }
    let authority = if authority.contains(':') { authority.to_string() } else { format!("{authority}:80") };
    Ok((authority, path.to_string()))
}

/// A plain HTTP/1.1 request on a fresh connection; calls `on_chunk` with each body chunk.
async fn http_request(
    authority: &str,
    method: &str,
    path: &str,
    body: Option<String>,
    mut on_chunk: impl FnMut(&[u8]),
) -> std::result::Result<u16, String> {
    let stream = tokio::net::TcpStream::connect(authority).await.map_err(|e| format!("connect {authority}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", authority)
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(hyper::body::Bytes::from(body.unwrap_or_default())))
        .map_err(|e| format!("request: {e}"))?;
    let resp = sender.send_request(req).await.map_err(|e| format!("send: {e}"))?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("body: {e}"))?;
        if let Some(d) = frame.data_ref() {
            on_chunk(d);
        }
    }
    Ok(status)
}

/// Sends one streamed completion and times its tokens.
async fn run_one(authority: &str, path: &str, model: &str, job: &Job) -> Outcome {
    let body = serde_json::json!({
        "model": model, "prompt": job.prompt, "max_tokens": job.max_tokens, "temperature": 0,
        "stream": true, "stream_options": {"include_usage": true}, "ignore_eos": true,
    })
    .to_string();
    let t0 = Instant::now();
    let mut out = Outcome::default();
    let mut buf = String::new();
    let mut last: Option<Instant> = None;
    let mut error_body = String::new();
    let mut done = false;
    let res = http_request(authority, "POST", path, Some(body), |chunk| {
        let now = Instant::now();
        buf.push_str(&String::from_utf8_lossy(chunk));
        while let Some(i) = buf.find("\n\n") {
            let event: String = buf.drain(..i + 2).collect();
            for line in event.lines() {
                let Some(data) = line.strip_prefix("data: ") else {
                    error_body.push_str(line);
                    continue;
                };
                if data == "[DONE]" {
                    done = true;
                    continue;
                }
                let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else { continue };
                if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
                    out.prompt_tokens = u["prompt_tokens"].as_u64().unwrap_or(0);
                    out.output_tokens = u["completion_tokens"].as_u64().unwrap_or(0);
                }
                if v.get("error").is_some() {
                    out.error = Some(v["error"]["message"].as_str().unwrap_or("error event").to_string());
                }
                let Some(c) = v["choices"].get(0) else { continue };
                if c["finish_reason"].is_null() && c.get("text").is_some() {
                    // One chunk per token.
                    match last {
                        None => out.ttft = Some(now.duration_since(t0).as_secs_f64()),
                        Some(p) => out.itls.push(now.duration_since(p).as_secs_f64()),
                    }
                    last = Some(now);
                }
            }
        }
        if !buf.contains("data:") && buf.len() > 4096 {
            error_body.push_str(&buf);
            buf.clear();
        }
    })
    .await;
    out.e2e = t0.elapsed().as_secs_f64();
    match res {
        Ok(200) if done && out.error.is_none() => out.ok = true,
        Ok(200) => out.error = out.error.take().or(Some("stream ended without [DONE]".into())),
        Ok(st) => out.error = Some(format!("HTTP {st}: {}", (error_body + &buf).chars().take(200).collect::<String>())),
        Err(e) => out.error = Some(e),
    }
    if out.output_tokens == 0 {
        out.output_tokens = out.ttft.is_some() as u64 + out.itls.len() as u64;
    }
    out
}

async fn run_level(
    authority: &str,
    path: &str,
    model: &str,
    jobs: Vec<Job>,
    load: Load,
    seed: u64,
    timeout: Duration,
) -> (Vec<Outcome>, f64) {
    let t0 = Instant::now();
    let one = move |job: Job, a: String, p: String, m: String| async move {
        match tokio::time::timeout(timeout, run_one(&a, &p, &m, &job)).await {
            Ok(o) => o,
            Err(_) => {
                Outcome { error: Some(format!("timed out after {:.0} s", timeout.as_secs_f64())), ..Default::default() }
            }
        }
    };
    let (a, p, m) = (authority.to_string(), path.to_string(), model.to_string());
    let mut handles: Vec<tokio::task::JoinHandle<Vec<Outcome>>> = Vec::new();
    match load {
        Load::Rate(rate) => {
            let mut rng = SplitMix64(seed);
            let mut at = Duration::ZERO;
            for job in jobs {
                if rate.is_finite() {
                    // Exponential inter-arrival times: a Poisson process, independent of the server.
                    let u = (1.0 - rng.next_f32() as f64).max(1e-12);
                    at += Duration::from_secs_f64(-u.ln() / rate);
                    tokio::time::sleep_until((t0 + at).into()).await;
                }
                let f = one(job, a.clone(), p.clone(), m.clone());
                handles.push(tokio::spawn(async move { vec![f.await] }));
            }
        }
        Load::Concurrency(c) => {
            let queue = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::from(jobs)));
            for _ in 0..c.max(1) {
                let q = queue.clone();
                let (a, p, m) = (a.clone(), p.clone(), m.clone());
                handles.push(tokio::spawn(async move {
                    let mut outs = Vec::new();
                    loop {
                        let job = q.lock().ok().and_then(|mut q| q.pop_front());
                        let Some(job) = job else { break };
                        outs.push(one(job, a.clone(), p.clone(), m.clone()).await);
                    }
                    outs
                }));
            }
        }
    }
    let mut outs = Vec::new();
    for h in handles {
        match h.await {
            Ok(o) => outs.extend(o),
            Err(e) => outs.push(Outcome { error: Some(format!("task failed: {e}")), ..Default::default() }),
        }
    }
    (outs, t0.elapsed().as_secs_f64())
}

fn summarize(load: Load, outs: &[Outcome], duration: f64, s: &ServeBenchSettings) -> LevelResult {
    let ok: Vec<&Outcome> = outs.iter().filter(|o| o.ok).collect();
    let ttfts: Vec<f64> = ok.iter().filter_map(|o| o.ttft).collect();
    let itls: Vec<f64> = ok.iter().flat_map(|o| o.itls.iter().copied()).collect();
    let tpots: Vec<f64> =
        ok.iter().filter(|o| !o.itls.is_empty()).map(|o| o.itls.iter().sum::<f64>() / o.itls.len() as f64).collect();
    let e2es: Vec<f64> = ok.iter().map(|o| o.e2e).collect();
    let good = ok
        .iter()
        .filter(|o| {
            let tpot = if o.itls.is_empty() { 0.0 } else { o.itls.iter().sum::<f64>() / o.itls.len() as f64 };
            o.ttft.is_some_and(|t| t * 1e3 <= s.slo_ttft_ms) && tpot * 1e3 <= s.slo_tpot_ms
        })
        .count();
    let prompt_tokens: u64 = ok.iter().map(|o| o.prompt_tokens).sum();
    let output_tokens: u64 = ok.iter().map(|o| o.output_tokens).sum();
    let d = duration.max(1e-9);
    let mut errors: Vec<String> = outs.iter().filter_map(|o| o.error.clone()).collect();
    errors.dedup();
    errors.truncate(5);
    LevelResult {
        load,
        completed: ok.len(),
        failed: outs.len() - ok.len(),
        errors,
        duration_s: duration,
        request_throughput: ok.len() as f64 / d,
        output_tok_s: output_tokens as f64 / d,
        total_tok_s: (prompt_tokens + output_tokens) as f64 / d,
        prompt_tokens,
        output_tokens,
        ttft_ms: Percentiles::of_ms(&ttfts),
        itl_ms: Percentiles::of_ms(&itls),
        tpot_ms: Percentiles::of_ms(&tpots),
        e2e_ms: Percentiles::of_ms(&e2es),
        goodput: good as f64 / d,
        slo_attainment: good as f64 / outs.len().max(1) as f64,
    }
}

/// The model the server serves (first of /v1/models).
async fn served_model(authority: &str, base: &str) -> Result<String> {
    let mut body = Vec::new();
    let st = http_request(authority, "GET", &format!("{base}/v1/models"), None, |c| body.extend_from_slice(c))
        .await
        .map_err(|e| Error::Invalid(format!("cannot reach the server: {e}")))?;
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| Error::Invalid(format!("/v1/models answered {st} with non-JSON: {e}")))?;
    v["data"][0]["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::Invalid(format!("/v1/models lists no model: {v}")))
}

/// Runs every load level against the server; `progress` gets a line per level.
pub fn run(s: &ServeBenchSettings, command: &str, progress: &mut dyn FnMut(&str)) -> Result<ServeBenchResults> {
    if s.loads.is_empty() {
        return Err(Error::Invalid("give at least one --request-rates or --concurrency level".into()));
    }
    if s.num_prompts == 0 {
        return Err(Error::Invalid("--num-prompts must be at least 1".into()));
    }
    if s.fixed_output_tokens.is_none() && s.min_output_tokens.max(1) > s.max_output_tokens.max(1) {
        return Err(Error::Invalid(format!(
            "--min-output-tokens {} is above --max-output-tokens {}: give a range with min <= max, or --output-tokens N",
            s.min_output_tokens, s.max_output_tokens
        )));
    }
    for l in &s.loads {
        match *l {
            Load::Rate(r) if r.is_nan() || r <= 0.0 => {
                return Err(Error::Invalid(format!("request rate must be > 0, got {r}")))
            }
            Load::Concurrency(0) => return Err(Error::Invalid("concurrency must be at least 1".into())),
            _ => {}
        }
    }
    let (authority, base) = parse_url(&s.url)?;
    let speeches = load_speeches(&s.texts)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Invalid(format!("could not start the async runtime: {e}")))?;
    let started_unix =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    rt.block_on(async {
        let model = match &s.model {
            Some(m) => m.clone(),
            None => served_model(&authority, &base).await?,
        };
        let path = format!("{base}/v1/completions");
        let timeout = Duration::from_secs_f64(s.timeout_s.max(1.0));
        if s.warmup > 0 {
            let jobs = make_jobs(s, &speeches, s.warmup, s.seed ^ 0xAAAA);
            let (outs, _) = run_level(&authority, &path, &model, jobs, Load::Concurrency(1), 0, timeout).await;
            if let Some(e) = outs.iter().find_map(|o| o.error.clone()) {
                return Err(Error::Invalid(format!("warm-up request failed: {e}")));
            }
        }
        let mut levels = Vec::new();
        for (i, &load) in s.loads.iter().enumerate() {
            // The same prompts at every level, so levels differ only in load.
            let jobs = make_jobs(s, &speeches, s.num_prompts, s.seed);
            let (outs, dur) = run_level(&authority, &path, &model, jobs, load, s.seed.wrapping_add(i as u64), timeout).await;
            let r = summarize(load, &outs, dur, s);
            progress(&format!(
                "{load}: {}/{} ok in {:.1} s, {:.2} req/s, {:.1} output tok/s, TTFT p50 {:.0} ms p99 {:.0} ms, ITL p50 {:.1} ms",
                r.completed,
                s.num_prompts,
                r.duration_s,
                r.request_throughput,
                r.output_tok_s,
                r.ttft_ms.map_or(f64::NAN, |p| p.p50),
                r.ttft_ms.map_or(f64::NAN, |p| p.p99),
                r.itl_ms.map_or(f64::NAN, |p| p.p50),
            ));
            levels.push(r);
        }
        Ok(ServeBenchResults {
            schema_version: SERVE_RESULTS_SCHEMA_VERSION,
            trtforge_version: env!("CARGO_PKG_VERSION").to_string(),
            command: command.to_string(),
            started_unix,
            model,
            settings: s.clone(),
            levels,
            static_comparison: Vec::new(),
            run_id: super::report::new_run_id(),
        })
    })
}

fn fmt_p(p: Option<Percentiles>) -> String {
    p.map_or("–".into(), |p| format!("{:.1} / {:.1} / {:.1}", p.p50, p.p90, p.p99))
}

/// Markdown report.
pub fn markdown(r: &ServeBenchResults) -> String {
    let s = &r.settings;
    let mut o = String::new();
    o.push_str(&format!(
        "# Serving benchmark: {}

",
        r.model
    ));
    o.push_str(&format!(
        "- server: `{}`
- command: `{}`
",
        s.url, r.command
    ));
    o.push_str(&format!(
        "- {} requests per level (+{} warm-up), prompts from `{}` (≤ {} words), output {} tokens (ignore_eos), seed {}
",
        s.num_prompts,
        s.warmup,
        s.texts.display(),
        s.max_prompt_words,
        match s.fixed_output_tokens {
            Some(n) => format!("exactly {n} tokens"),
            None => format!("{}..{} tokens drawn from the next speech", s.min_output_tokens, s.max_output_tokens),
        },
        s.seed
    ));
    o.push_str(&format!(
        "- SLO for goodput: TTFT ≤ {} ms and TPOT ≤ {} ms

",
        s.slo_ttft_ms, s.slo_tpot_ms
    ));
    o.push_str("| load | ok / failed | req/s | output tok/s | total tok/s | TTFT ms p50 / p90 / p99 | ITL ms p50 / p90 / p99 | e2e ms p50 / p90 / p99 | goodput req/s (SLO %) |
");
    o.push_str(
        "|---|---|---|---|---|---|---|---|---|
",
    );
    for l in &r.levels {
        o.push_str(&format!(
            "| {} | {} / {} | {:.2} | {:.1} | {:.1} | {} | {} | {} | {:.2} ({:.0} %) |
",
            l.load,
            l.completed,
            l.failed,
            l.request_throughput,
            l.output_tok_s,
            l.total_tok_s,
            fmt_p(l.ttft_ms),
            fmt_p(l.itl_ms),
            fmt_p(l.e2e_ms),
            l.goodput,
            l.slo_attainment * 100.0
        ));
    }
    if !r.static_comparison.is_empty() {
        o.push_str("\nAgainst the static `trtforge bench` figure (issue #12: output tok/s at N streams ≥ 0.9× the static figure at batch N; decode rate = what `bench` reports, end-to-end = N × new tokens / (TTFT + (new − 1) steps), prefill included):\n\n");
        for line in static_lines(r) {
            o.push_str(&format!("- {line}\n"));
        }
    }
    let errs: Vec<&String> = r.levels.iter().flat_map(|l| &l.errors).collect();
    if !errs.is_empty() {
        o.push_str(
            "
Errors (first of each level):

",
        );
        for e in errs {
            o.push_str(&format!(
                "- {e}
"
            ));
        }
    }
    o
}

/// Latency vs achieved load: TTFT and ITL percentiles against output tok/s.
pub fn latency_svg(r: &ServeBenchResults) -> String {
    let mut pts: Vec<(f64, &LevelResult)> = r.levels.iter().map(|l| (l.output_tok_s, l)).collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let series = |name: &str, f: &dyn Fn(&LevelResult) -> Option<f64>| -> super::report::Series {
        (name.to_string(), pts.iter().filter_map(|(x, l)| f(l).map(|y| (*x, y))).collect())
    };
    let data = vec![
        series("TTFT p50", &|l| l.ttft_ms.map(|p| p.p50)),
        series("TTFT p99", &|l| l.ttft_ms.map(|p| p.p99)),
        series("ITL p50", &|l| l.itl_ms.map(|p| p.p50)),
        series("ITL p99", &|l| l.itl_ms.map(|p| p.p99)),
    ];
    super::report::line_chart(&format!("latency vs load: {}", r.model), "output tok/s", "ms", &data)
}

/// The files [`write_all`] writes.
pub const REPORT_FILES: [&str; 3] = ["serve_results.json", "serve_report.md", "serve_latency.svg"];

/// Writes serve_results.json, serve_report.md and serve_latency.svg into `dir` as one unit
/// (`report::install`), each carrying the run's id.
pub fn write_all(r: &ServeBenchResults, dir: &Path) -> Result<Vec<PathBuf>> {
    let json = serde_json::to_string_pretty(r).map_err(|e| Error::Invalid(format!("serializing results: {e}")))?;
    let files = [
        (REPORT_FILES[0], json),
        (REPORT_FILES[1], super::report::mark(&markdown(r), &r.run_id)),
        (REPORT_FILES[2], super::report::mark(&latency_svg(r), &r.run_id)),
    ];
    super::report::install(dir, &REPORT_FILES, &files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_jobs() {
        assert_eq!(parse_url("http://127.0.0.1:8000").unwrap(), ("127.0.0.1:8000".into(), "".into()));
        assert_eq!(parse_url("http://h/x/").unwrap(), ("h:80".into(), "/x".into()));
        assert!(parse_url("https://h").is_err());
        let speeches: Vec<String> = (0..50).map(|i| format!("w{i} ").repeat(3 + i % 7).trim().to_string()).collect();
        let s = ServeBenchSettings {
            url: String::new(),
            model: None,
            loads: vec![],
            num_prompts: 10,
            warmup: 0,
            texts: PathBuf::new(),
            max_prompt_words: 20,
            min_output_tokens: 4,
            max_output_tokens: 9,
            fixed_output_tokens: None,
            slo_ttft_ms: 1.0,
            slo_tpot_ms: 1.0,
            seed: 1,
            timeout_s: 1.0,
        };
        let a = make_jobs(&s, &speeches, 10, 3);
        let b = make_jobs(&s, &speeches, 10, 3);
        assert_eq!(
            a.iter().map(|j| (&j.prompt, j.max_tokens)).collect::<Vec<_>>(),
            b.iter().map(|j| (&j.prompt, j.max_tokens)).collect::<Vec<_>>()
        );
        for j in &a {
            let w = j.prompt.split(' ').count();
            assert!((16..=20).contains(&w) && (4..=9).contains(&j.max_tokens), "{w} {}", j.max_tokens);
        }
    }
    #[test]
    fn static_comparison_states_both_ratios() {
        let level = |load, out_tok_s| LevelResult {
            load,
            completed: 768,
            failed: 0,
            errors: vec![],
            duration_s: 1.0,
            request_throughput: 1.0,
            output_tok_s: out_tok_s,
            total_tok_s: 1.0,
            prompt_tokens: 768 * 66,
            output_tokens: 768 * 128,
            ttft_ms: None,
            itl_ms: None,
            tpot_ms: None,
            e2e_ms: None,
            goodput: 0.0,
            slo_attainment: 0.0,
        };
        let settings: ServeBenchSettings = serde_json::from_value(serde_json::json!({
            "url": "", "model": null, "loads": [], "num_prompts": 768, "warmup": 0, "texts": "t",
            "max_prompt_words": 400, "min_output_tokens": 8, "max_output_tokens": 256,
            "fixed_output_tokens": 128, "slo_ttft_ms": 500.0, "slo_tpot_ms": 50.0, "seed": 0, "timeout_s": 1.0
        }))
        .unwrap();
        let mut r = ServeBenchResults {
            schema_version: SERVE_RESULTS_SCHEMA_VERSION,
            trtforge_version: String::new(),
            command: String::new(),
            started_unix: 0,
            model: "m".into(),
            settings,
            levels: vec![level(Load::Rate(100.0), 1.0), level(Load::Concurrency(64), 30_000.0)],
            static_comparison: vec![],
            run_id: String::new(),
        };
        // Two runs (prompt 72 and 512): the one nearest the served prompts (66) is taken.
        let doc = serde_json::json!({"runs": [
            {"rows": [{"batch": 64, "precision": "fp16", "decode_tok_s": 40000.0, "step_ms": 1.6, "ttft_ms": 50.0, "new_tokens": 128, "prompt_len": 72},
                      {"batch": 1, "precision": "fp16", "decode_tok_s": 1000.0, "step_ms": 1.0, "ttft_ms": 2.0, "new_tokens": 128, "prompt_len": 72}]},
            {"rows": [{"batch": 64, "precision": "fp16", "decode_tok_s": 35000.0, "step_ms": 1.8, "ttft_ms": 150.0, "new_tokens": 128, "prompt_len": 512}]}
        ]});
        let c = compare_static(&r, &doc, "s.json", None).unwrap();
        assert_eq!(c.len(), 1);
        let c = &c[0];
        assert_eq!((c.batch, c.static_prompt_len), (64, 72));
        assert!((c.ratio_vs_decode - 0.75).abs() < 1e-9);
        let e2e = 64.0 * 128.0 / ((50.0 + 127.0 * 1.6) / 1e3);
        assert!((c.static_e2e_tok_s - e2e).abs() < 1e-6 && (c.ratio_vs_e2e - 30_000.0 / e2e).abs() < 1e-9);
        assert!(c.mismatch.is_empty(), "{:?}", c.mismatch);
        r.static_comparison = vec![c.clone()];
        let line = &static_lines(&r)[0];
        assert!(line.contains("0.750× the static decode rate 40000 tok/s (not met)"), "{line}");
        assert!(markdown(&r).contains("end-to-end"));
        // Precision filter and a file that is not a bench JSON.
        assert!(compare_static(&r, &doc, "s.json", Some("int8")).unwrap().is_empty());
        assert!(compare_static(&r, &serde_json::json!({}), "x", None).is_err());
    }
}
