//! `trtforge bench`: every engine × backend × batch × input length, with quality side by side.
//!
//! Honest timing: warm-up runs are excluded, every forward returns logits to the host (which
//! synchronizes the device) before the clock is read, inputs are seeded, and the report records the
//! machine and the exact command.
pub mod machine;
pub mod metrics;
pub mod report;
pub mod roofline;
pub mod serve;

use crate::backend::{open_engine_dir, Backend, BackendKind, Logits, MemoryStats, SeqChunk};
use crate::engine_dir::Manifest;
use crate::error::{Error, Result};
use crate::model::tokenizer::Tokenizer;
use crate::util::seeded_prompts;
use machine::MachineInfo;
use metrics::{Latency, Summary};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Version of `results.json`; see docs/bench-schema.md.
pub const RESULTS_SCHEMA_VERSION: u32 = 1;

/// Prompts for greedy agreement and BLEU.
pub const QUALITY_PROMPTS: &[&str] = &[
    "The capital of France is",
    "Once upon a time",
    "To be, or not to be, that is the question:",
    "The three primary colors are",
];

/// Paths as results.json records them: serde refuses a path that is not UTF-8, which would lose a
/// whole report over a name; the report is for reading, so such a path is written lossily.
pub(crate) mod lossy {
    use std::path::{Path, PathBuf};
    pub fn one<S: serde::Serializer>(v: &Path, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string_lossy())
    }
    pub fn paths<S: serde::Serializer>(v: &[PathBuf], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|p| p.to_string_lossy()))
    }
    pub fn path<S: serde::Serializer>(v: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(p) => s.serialize_some(&p.to_string_lossy()),
            None => s.serialize_none(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchSettings {
    #[serde(serialize_with = "lossy::paths")]
    pub engine_dirs: Vec<PathBuf>,
    pub backends: Vec<BackendKind>,
    pub batch_sizes: Vec<usize>,
    pub input_lens: Vec<usize>,
    pub output_len: usize,
    pub runs: usize,
    pub warmup: usize,
    #[serde(serialize_with = "lossy::path")]
    pub eval_text: Option<PathBuf>,
    pub eval_ctx: usize,
    pub eval_windows: usize,
    pub quality_tokens: usize,
    pub memory_sweep: bool,
    pub sweep_batch_sizes: Vec<usize>,
    pub sweep_seq_lens: Vec<usize>,
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// The backend cannot run here (with the reason).
    Unavailable,
    /// Out of memory at this shape.
    Oom,
    Error,
    /// Ctrl-C before this cell ran.
    Interrupted,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineInfo {
    pub dir: String,
    pub name: String,
    pub precision: String,
    pub parameters: usize,
    pub size_bytes: u64,
    /// KV cache element type as the engine records it: "float16", "float32", "fp8 (calibrated)", "int8 (dynamic, smooth K)", ...
    #[serde(default)]
    pub kv_cache: String,
    /// KV cache bytes per token of that format (all layers, K and V, dynamic scales amortized).
    #[serde(default)]
    pub kv_bytes_per_token: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpeedResult {
    pub engine: String,
    pub backend: String,
    pub batch: usize,
    pub input_len: usize,
    pub output_len: usize,
    pub status: Status,
    pub reason: Option<String>,
    pub ttft_ms: Option<Summary>,
    pub itl_ms: Option<Latency>,
    pub decode_tok_s: Option<Summary>,
    pub prefill_tok_s: Option<Summary>,
    pub e2e_tok_s: Option<Summary>,
    pub memory: Option<MemoryStats>,
    pub host_peak_rss_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QualityResult {
    pub engine: String,
    pub backend: String,
    pub status: Status,
    pub reason: Option<String>,
    pub perplexity: Option<f64>,
    pub perplexity_tokens: Option<usize>,
    /// The window length perplexity was computed with: `--eval-ctx`, capped at what the engine holds.
    #[serde(default)]
    pub perplexity_ctx: Option<usize>,
    pub reference_engine: Option<String>,
    /// Position-wise agreement of greedy tokens with the reference engine, over all prompts.
    pub greedy_agreement: Option<f64>,
    /// Mean common-prefix length with the reference engine's greedy tokens.
    pub greedy_prefix_mean: Option<f64>,
    /// Corpus BLEU-4 of the generated text against the reference engine's, in [0, 100].
    pub bleu: Option<f64>,
    /// Greedy continuations of QUALITY_PROMPTS.
    pub samples: Vec<String>,
    /// Their token ids (what agreement compares; also how a bench child process hands them back).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub greedy_tokens: Vec<Vec<u32>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepResult {
    pub engine: String,
    pub backend: String,
    pub batch: usize,
    pub seq_len: usize,
    pub status: Status,
    pub reason: Option<String>,
    pub memory: Option<MemoryStats>,
    pub host_peak_rss_bytes: Option<u64>,
    pub prefill_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchResults {
    pub schema_version: u32,
    pub trtforge_version: String,
    pub git_commit: String,
    pub command: String,
    pub created: String,
    pub machine: MachineInfo,
    pub settings: BenchSettings,
    pub engines: Vec<EngineInfo>,
    pub speed: Vec<SpeedResult>,
    pub quality: Vec<QualityResult>,
    pub memory_sweep: Vec<SweepResult>,
    /// True when Ctrl-C stopped the run early; what was measured is kept.
    pub interrupted: bool,
    /// This run's id, which every file of its report carries (`report::new_run_id`); empty in
    /// results of an older trtforge or another tool.
    #[serde(default)]
    pub run_id: String,
}

impl BenchResults {
    /// Reads a results.json (from an earlier bench or scripts/hf_baseline.py) of this schema version.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = crate::util::read_text(path, None)?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::format(path, format!("not a trtforge results.json: {e}")))?;
        let ver = v.get("schema_version").and_then(|x| x.as_u64());
        if ver != Some(RESULTS_SCHEMA_VERSION as u64) {
            return Err(Error::format(
                path,
                format!("results schema version {ver:?}, this trtforge reads version {RESULTS_SCHEMA_VERSION}"),
            ));
        }
        serde_json::from_value(v).map_err(|e| Error::format(path, format!("not a trtforge results.json: {e}")))
    }

    /// Adds a baseline's rows (and the engines they name) to these results, each engine name marked
    /// "(baseline)" so the tables never show two unlabeled rows for one engine.
    pub fn merge(&mut self, b: BenchResults) {
        let label = |n: &str| if n.ends_with("(baseline)") { n.to_string() } else { format!("{n} (baseline)") };
        self.speed.extend(b.speed.into_iter().map(|mut r| {
            r.engine = label(&r.engine);
            r
        }));
        self.quality.extend(b.quality.into_iter().map(|mut r| {
            r.engine = label(&r.engine);
            r.reference_engine = r.reference_engine.map(|n| label(&n));
            r
        }));
        self.memory_sweep.extend(b.memory_sweep.into_iter().map(|mut r| {
            r.engine = label(&r.engine);
            r
        }));
        for mut e in b.engines {
            e.name = label(&e.name);
            if !self.engines.iter().any(|x| x.name == e.name) {
                self.engines.push(e);
            }
        }
    }
}

/// Progress reporting, decoupled from the terminal (the CLI supplies indicatif or plain lines).
pub trait Progress {
    /// Called before `start` when engines will be measured in child processes (whose own
    /// progress lines share the terminal): a progress bar should give way to plain lines.
    fn child_processes(&mut self) {}
    fn start(&mut self, total: u64);
    fn step(&mut self, msg: &str);
    fn finish(&mut self);
    /// A line for the user that is not a step (what a backend runs differently: `Backend::notes`).
    fn note(&mut self, msg: &str) {
        crate::util::errln!("{msg}");
    }
}

/// Measures one (engine dir, backend) pair in a process of its own and returns what it wrote
/// (`trtforge bench` re-runs itself on that pair alone).
pub type ChildBench<'a> = &'a dyn Fn(&Path, BackendKind) -> Result<BenchResults>;

/// Which (engine, backend) pairs `run` measures in processes of their own (through its `child`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolate {
    /// CUDA engines, when the run opens more than one: a later engine loaded into the same process
    /// ran its decode steps up to 6 % slower than the first (docs/cuda.md, sessions 8, 17, 18),
    /// which would bias every comparison of engines.
    Auto,
    /// Every pair (also gives each its own host peak RSS).
    Always,
    /// None: everything in this process.
    Never,
}

impl Isolate {
    pub const NAMES: [&'static str; 3] = ["auto", "always", "never"];

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Isolate::Auto),
            "always" => Ok(Isolate::Always),
            "never" => Ok(Isolate::Never),
            o => Err(Error::Invalid(format!("--isolate {o:?}: use auto, always or never"))),
        }
    }

    /// Whether a measurement goes to a process of its own; `auto_rule`: what `Auto` decides for it.
    pub fn applies(self, auto_rule: bool) -> bool {
        match self {
            Isolate::Auto => auto_rule,
            Isolate::Always => true,
            Isolate::Never => false,
        }
    }
}

/// Measures every engine × backend × shape; with `child`, the pairs `isolate` names in processes
/// of their own. Checks all engine dirs before any measurement, so a bad dir fails fast.
pub fn run(
    settings: &BenchSettings,
    command: &str,
    stop: &AtomicBool,
    progress: &mut dyn Progress,
    child: Option<ChildBench>,
    isolate: Isolate,
) -> Result<BenchResults> {
    if settings.runs == 0 {
        return Err(Error::Invalid("--runs must be at least 1".into()));
    }
    if settings.batch_sizes.contains(&0) || settings.input_lens.contains(&0) || settings.output_len == 0 {
        return Err(Error::Invalid("batch sizes, input lengths and --output-len must be at least 1".into()));
    }
    let mut engines = Vec::new();
    let mut manifests = Vec::new();
    for d in &settings.engine_dirs {
        if !d.is_dir() {
            return Err(Error::Invalid(format!(
                "engine dir {} does not exist (run `trtforge convert` first)",
                d.display()
            )));
        }
        let m = Manifest::load(d)?;
        m.check_files(d)?;
        engines.push(EngineInfo {
            dir: d.display().to_string(),
            name: m.name.clone(),
            precision: m.precision_name().to_string(),
            parameters: m.model_config.param_count(),
            size_bytes: m.files.iter().map(|f| f.bytes).sum(),
            kv_cache: m.kv_format().0,
            kv_bytes_per_token: m.kv_format().1,
        });
        manifests.push(m);
    }
    let eval_ids_cache: Option<String> = match &settings.eval_text {
        Some(p) => {
            let t = crate::util::read_text(p, None)?;
            if t.trim().is_empty() {
                return Err(Error::Invalid(format!("--eval-text {} is empty", p.display())));
            }
            Some(t)
        }
        None => None,
    };
    let mut res = BenchResults {
        schema_version: RESULTS_SCHEMA_VERSION,
        trtforge_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: env!("TRTFORGE_GIT_COMMIT").into(),
        command: command.into(),
        created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        machine: MachineInfo::detect(),
        settings: settings.clone(),
        engines: engines.clone(),
        speed: Vec::new(),
        quality: Vec::new(),
        memory_sweep: Vec::new(),
        interrupted: false,
        run_id: report::new_run_id(),
    };
    let cells_per_backend = settings.batch_sizes.len() * settings.input_lens.len()
        + 1
        + if settings.memory_sweep { settings.sweep_batch_sizes.len() * settings.sweep_seq_lens.len() } else { 0 };
    if child.is_some() {
        progress.child_processes();
    }
    progress.start((engines.len() * settings.backends.len() * cells_per_backend) as u64);
    let max_in = *settings.input_lens.iter().max().unwrap_or(&1);
    let cuda_opens = engines.len() * settings.backends.iter().filter(|&&k| k == BackendKind::Cuda).count();
    let isolated = |kind: BackendKind| isolate.applies(kind == BackendKind::Cuda && cuda_opens > 1);
    let child = child.filter(|_| settings.backends.iter().any(|&k| isolated(k)));

    // The paths as given: `EngineInfo::dir` is for reports (lossy where a path is not UTF-8).
    for ((e, man), dir) in engines.iter().zip(&manifests).zip(&settings.engine_dirs) {
        let dir = dir.as_path();
        let tokenizer = match &man.tokenizer {
            Some(t) => Some(Tokenizer::from_file(&dir.join(t))?),
            None => None,
        };
        // The engine's limits, checked before any backend is opened: cells beyond them are
        // reported as unavailable instead of allocating what the engine was not built for.
        let engine_batch = man.build.max_batch_size.max(1);
        let engine_seq = man.build.max_seq_len.min(man.model_config.max_position_embeddings);
        let too_big = |b: usize| format!("batch {b} is larger than the engine's build.max_batch_size {engine_batch}");
        let max_batch = settings.batch_sizes.iter().copied().filter(|&b| b <= engine_batch).max().unwrap_or(1);
        for &kind in &settings.backends {
            let label = format!("{} / {}", e.name, kind.name());
            let fail_group = |res: &mut BenchResults, progress: &mut dyn Progress, status: Status, why: &str| {
                for &b in &settings.batch_sizes {
                    for &l in &settings.input_lens {
                        res.speed.push(SpeedResult::failed(e, kind, b, l, settings.output_len, status, why));
                        progress.step(&label);
                    }
                }
                res.quality.push(QualityResult::failed(e, kind, status, why));
                progress.step(&label);
                if settings.memory_sweep {
                    for &b in &settings.sweep_batch_sizes {
                        for &s in &settings.sweep_seq_lens {
                            res.memory_sweep.push(SweepResult::failed(e, kind, b, s, status, why));
                            progress.step(&label);
                        }
                    }
                }
            };
            if let Some(child) = child.filter(|_| isolated(kind)) {
                if stop.load(Ordering::SeqCst) {
                    fail_group(&mut res, progress, Status::Interrupted, "interrupted");
                    continue;
                }
                match child(dir, kind) {
                    Ok(r) => {
                        let cells = r.speed.len() + r.quality.len() + r.memory_sweep.len();
                        res.speed.extend(r.speed);
                        res.quality.extend(r.quality);
                        res.memory_sweep.extend(r.memory_sweep);
                        for _ in 0..cells {
                            progress.step(&format!("{label} (own process)"));
                        }
                        if r.interrupted {
                            stop.store(true, Ordering::SeqCst);
                        }
                    }
                    Err(err) => fail_group(&mut res, progress, classify(&err), &err.to_string()),
                }
                continue;
            }
            let max_seq = max_in
                .saturating_add(settings.output_len)
                .max(settings.eval_ctx)
                .max(64)
                .min(man.build.max_seq_len)
                .min(man.model_config.max_position_embeddings);
            let opened = if stop.load(Ordering::SeqCst) {
                Err(Error::Invalid("interrupted".into()))
            } else {
                open_engine_dir(dir, kind, max_batch, max_seq)
            };
            let mut backend = match opened {
                Ok(b) => b,
                Err(err) => {
                    let status = if stop.load(Ordering::SeqCst) { Status::Interrupted } else { classify(&err) };
                    fail_group(&mut res, progress, status, &err.to_string());
                    continue;
                }
            };
            for n in backend.notes() {
                progress.note(&format!("note: {}: {n}", dir.display()));
            }
            for &b in &settings.batch_sizes {
                for &l in &settings.input_lens {
                    let r = if stop.load(Ordering::SeqCst) {
                        SpeedResult::failed(e, kind, b, l, settings.output_len, Status::Interrupted, "interrupted")
                    } else if b > engine_batch {
                        SpeedResult::failed(e, kind, b, l, settings.output_len, Status::Unavailable, &too_big(b))
                    } else {
                        speed_cell(backend.as_mut(), e, kind, b, l, settings, stop)
                    };
                    progress.step(&format!("{label} batch {b} input {l}"));
                    res.speed.push(r);
                }
            }
            let q = if stop.load(Ordering::SeqCst) {
                (QualityResult::failed(e, kind, Status::Interrupted, "interrupted"), None)
            } else {
                quality_cell(backend.as_mut(), e, kind, tokenizer.as_ref(), eval_ids_cache.as_deref(), settings)
            };
            let (mut q, toks) = q;
            q.greedy_tokens = toks.unwrap_or_default();
            res.quality.push(q);
            progress.step(&format!("{label} quality"));
            drop(backend);
            if settings.memory_sweep {
                for &b in &settings.sweep_batch_sizes {
                    for &s in &settings.sweep_seq_lens {
                        let r = if stop.load(Ordering::SeqCst) {
                            SweepResult::failed(e, kind, b, s, Status::Interrupted, "interrupted")
                        } else if b > engine_batch {
                            SweepResult::failed(e, kind, b, s, Status::Unavailable, &too_big(b))
                        } else if s > engine_seq {
                            SweepResult::failed(
                                e,
                                kind,
                                b,
                                s,
                                Status::Unavailable,
                                "sequence longer than the engine's max_seq_len",
                            )
                        } else {
                            sweep_cell(dir, e, kind, b, s, settings.seed)
                        };
                        progress.step(&format!("{label} memory batch {b} seq {s}"));
                        res.memory_sweep.push(r);
                    }
                }
            }
        }
    }
    fill_agreement(&mut res.quality, &engines);
    res.interrupted = stop.load(Ordering::SeqCst);
    progress.finish();
    Ok(res)
}

/// An out-of-memory error is reported as OOM, a missing capability as unavailable.
fn classify(e: &Error) -> Status {
    let s = e.to_string().to_ascii_lowercase();
    if s.contains("out of memory") || s.contains("cannot allocate") || s.contains("oom") {
        Status::Oom
    } else if matches!(e, Error::Unsupported(_) | Error::Gpu(_) | Error::Unavailable(_)) {
        Status::Unavailable
    } else {
        Status::Error
    }
}

/// One timed generation: batched prefill, then output_len − 1 batched decode steps.
/// Returns (ttft s, per-step latencies s, total s).
fn timed_generation(b: &mut dyn Backend, prompts: &[Vec<u32>], output_len: usize) -> Result<(f64, Vec<f64>, f64)> {
    for slot in 0..prompts.len() {
        b.reset(slot);
    }
    let t0 = Instant::now();
    let chunks: Vec<SeqChunk> = prompts.iter().enumerate().map(|(slot, p)| SeqChunk { slot, tokens: p }).collect();
    // Greedy through `forward_greedy`: a GPU backend picks the tokens on the device and returns only
    // their ids (no per-step copy of batch × vocab logits and host argmax, which halved the CUDA
    // engine's bs64 numbers); other backends run forward + argmax, as before.
    let mut next: Vec<[u32; 1]> = b.forward_greedy(&chunks)?.into_iter().map(|t| [t]).collect();
    let ttft = t0.elapsed().as_secs_f64();
    let mut itl = Vec::with_capacity(output_len.saturating_sub(1));
    for _ in 1..output_len {
        let t = Instant::now();
        let chunks: Vec<SeqChunk> = next.iter().enumerate().map(|(slot, tok)| SeqChunk { slot, tokens: tok }).collect();
        next = b.forward_greedy(&chunks)?.into_iter().map(|t| [t]).collect();
        itl.push(t.elapsed().as_secs_f64());
    }
    Ok((ttft, itl, t0.elapsed().as_secs_f64()))
}

fn speed_cell(
    b: &mut dyn Backend,
    e: &EngineInfo,
    kind: BackendKind,
    batch: usize,
    input_len: usize,
    s: &BenchSettings,
    stop: &AtomicBool,
) -> SpeedResult {
    let fail = |st: Status, msg: &str| SpeedResult::failed(e, kind, batch, input_len, s.output_len, st, msg);
    if input_len.checked_add(s.output_len).is_none_or(|n| n > b.max_seq()) {
        return fail(
            Status::Unavailable,
            &format!("input {input_len} + output {} exceeds the engine's {} tokens", s.output_len, b.max_seq()),
        );
    }
    let prompts = seeded_prompts(&vec![input_len; batch], b.config().vocab_size, s.seed);
    machine::reset_peak_rss();
    let (mut ttft, mut itl, mut dec, mut pre, mut e2e) = (vec![], vec![], vec![], vec![], vec![]);
    for i in 0..s.warmup + s.runs {
        if stop.load(Ordering::SeqCst) && !ttft.is_empty() {
            break; // keep the runs measured so far
        }
        match timed_generation(b, &prompts, s.output_len) {
            Ok((t, steps, total)) => {
                if i < s.warmup {
                    continue;
                }
                let decode_time: f64 = steps.iter().sum();
                ttft.push(t * 1e3);
                pre.push((batch * input_len) as f64 / t);
                if !steps.is_empty() {
                    dec.push((batch * steps.len()) as f64 / decode_time);
                }
                e2e.push((batch * s.output_len) as f64 / total);
                itl.extend(steps.iter().map(|x| x * 1e3));
            }
            Err(err) => return fail(classify(&err), &err.to_string()),
        }
    }
    SpeedResult {
        engine: e.name.clone(),
        backend: kind.name().into(),
        batch,
        input_len,
        output_len: s.output_len,
        status: Status::Ok,
        reason: None,
        ttft_ms: Summary::of(&ttft),
        itl_ms: Latency::of(&itl),
        decode_tok_s: Summary::of(&dec),
        prefill_tok_s: Summary::of(&pre),
        e2e_tok_s: Summary::of(&e2e),
        memory: Some(b.memory()),
        host_peak_rss_bytes: machine::host_rss().0,
    }
}

/// Perplexity and greedy samples. Returns the greedy tokens for the agreement pass.
fn quality_cell(
    b: &mut dyn Backend,
    e: &EngineInfo,
    kind: BackendKind,
    tok: Option<&Tokenizer>,
    eval_text: Option<&str>,
    s: &BenchSettings,
) -> (QualityResult, Option<Vec<Vec<u32>>>) {
    let mut q = QualityResult::failed(e, kind, Status::Ok, "");
    q.reason = None;
    let Some(tok) = tok else {
        q.status = Status::Unavailable;
        q.reason = Some("the engine has no tokenizer (random-weight preset): quality is not measured".into());
        return (q, None);
    };
    if let Some(text) = eval_text {
        let ctx = s.eval_ctx.min(b.max_seq());
        let run = tok
            .encode_prefix(text, false, s.eval_windows.saturating_mul(ctx))
            .and_then(|ids| crate::eval::perplexity(&mut *b, &ids, ctx, Some(s.eval_windows), |_, _| {}));
        match run {
            Ok(r) => {
                q.perplexity = Some(r.perplexity);
                q.perplexity_tokens = Some(r.tokens);
                q.perplexity_ctx = Some(r.ctx);
            }
            Err(err) => {
                q.status = classify(&err);
                q.reason = Some(err.to_string());
                return (q, None);
            }
        }
    }
    let mut all = Vec::new();
    for p in QUALITY_PROMPTS {
        let ids = match tok.encode(p, false) {
            Ok(i) => i,
            Err(err) => {
                q.status = Status::Error;
                q.reason = Some(err.to_string());
                return (q, None);
            }
        };
        let n = s.quality_tokens.min(b.max_seq().saturating_sub(ids.len()));
        let params = crate::generate::SamplingParams { greedy: true, max_new_tokens: n, ..Default::default() };
        let stop = crate::generate::StopCriteria { eos: &[], stop_strings: &[], detok: None };
        match crate::generate::generate_batch(b, &[ids], &params, &stop, |_, _| {}) {
            Ok(o) => {
                q.samples.push(tok.decode(&o[0].tokens, true).unwrap_or_default());
                all.push(o[0].tokens.clone());
            }
            Err(err) => {
                q.status = classify(&err);
                q.reason = Some(err.to_string());
                return (q, None);
            }
        }
    }
    (q, Some(all))
}

/// Builds a fresh backend at (batch, seq) and runs one full prefill: the memory that shape needs.
fn sweep_cell(dir: &Path, e: &EngineInfo, kind: BackendKind, batch: usize, seq: usize, seed: u64) -> SweepResult {
    let fail = |st: Status, msg: &str| SweepResult::failed(e, kind, batch, seq, st, msg);
    machine::reset_peak_rss();
    let mut b = match open_engine_dir(dir, kind, batch, seq) {
        Ok(b) => b,
        Err(err) => return fail(classify(&err), &err.to_string()),
    };
    let prompts = seeded_prompts(&vec![seq; batch], b.config().vocab_size, seed);
    let chunks: Vec<SeqChunk> = prompts.iter().enumerate().map(|(slot, p)| SeqChunk { slot, tokens: p }).collect();
    let t = Instant::now();
    match b.forward(&chunks, Logits::Last) {
        Ok(_) => SweepResult {
            engine: e.name.clone(),
            backend: kind.name().into(),
            batch,
            seq_len: seq,
            status: Status::Ok,
            reason: None,
            memory: Some(b.memory()),
            host_peak_rss_bytes: machine::host_rss().0,
            prefill_ms: Some(t.elapsed().as_secs_f64() * 1e3),
        },
        Err(err) => fail(classify(&err), &err.to_string()),
    }
}

/// The reference for agreement and BLEU is the fp16 engine, else fp32, else the first engine,
/// on the same backend where possible.
fn fill_agreement(q: &mut [QualityResult], engines: &[EngineInfo]) {
    let pick = |prec: &str| engines.iter().find(|e| e.precision == prec).map(|e| e.name.clone());
    let Some(reference) = pick("fp16").or_else(|| pick("fp32")).or_else(|| engines.first().map(|e| e.name.clone()))
    else {
        return;
    };
    // Rows with greedy tokens (from the quality pass, here or in a bench child process).
    let has = |g: &QualityResult| !g.greedy_tokens.is_empty();
    for i in 0..q.len() {
        if !has(&q[i]) {
            continue;
        }
        let Some(j) = q
            .iter()
            .position(|g| has(g) && g.engine == reference && g.backend == q[i].backend)
            .or_else(|| q.iter().position(|g| has(g) && g.engine == reference))
        else {
            continue;
        };
        let (r, g) = (&q[i], &q[j]);
        let (mut same, mut n, mut prefix) = (0.0, 0usize, 0usize);
        for (a, b) in r.greedy_tokens.iter().zip(&g.greedy_tokens) {
            let (frac, p) = metrics::agreement(a, b);
            same += frac * a.len().min(b.len()) as f64;
            n += a.len().min(b.len());
            prefix += p;
        }
        let words = |v: &[String]| -> Vec<Vec<String>> {
            v.iter().map(|t| t.split_whitespace().map(String::from).collect()).collect()
        };
        let prefix_mean = prefix as f64 / r.greedy_tokens.len().max(1) as f64;
        let bleu = metrics::bleu(&words(&r.samples), &words(&g.samples));
        let r = &mut q[i];
        r.reference_engine = Some(reference.clone());
        r.greedy_agreement = (n > 0).then(|| same / n as f64);
        r.greedy_prefix_mean = Some(prefix_mean);
        r.bleu = Some(bleu);
    }
}

impl SpeedResult {
    fn failed(
        e: &EngineInfo,
        kind: BackendKind,
        batch: usize,
        input_len: usize,
        output_len: usize,
        status: Status,
        why: &str,
    ) -> Self {
        SpeedResult {
            engine: e.name.clone(),
            backend: kind.name().into(),
            batch,
            input_len,
            output_len,
            status,
            reason: Some(why.into()),
            ttft_ms: None,
            itl_ms: None,
            decode_tok_s: None,
            prefill_tok_s: None,
            e2e_tok_s: None,
            memory: None,
            host_peak_rss_bytes: None,
        }
    }
}

impl QualityResult {
    fn failed(e: &EngineInfo, kind: BackendKind, status: Status, why: &str) -> Self {
        QualityResult {
            engine: e.name.clone(),
            backend: kind.name().into(),
            status,
            reason: Some(why.into()),
            perplexity: None,
            perplexity_tokens: None,
            perplexity_ctx: None,
            reference_engine: None,
            greedy_agreement: None,
            greedy_prefix_mean: None,
            bleu: None,
            samples: Vec::new(),
            greedy_tokens: Vec::new(),
        }
    }
}

impl SweepResult {
    fn failed(e: &EngineInfo, kind: BackendKind, batch: usize, seq_len: usize, status: Status, why: &str) -> Self {
        SweepResult {
            engine: e.name.clone(),
            backend: kind.name().into(),
            batch,
            seq_len,
            status,
            reason: Some(why.into()),
            memory: None,
            host_peak_rss_bytes: None,
            prefill_ms: None,
        }
    }
}
