//! `trtforge serve`: an OpenAI-compatible server with in-flight batching over a paged KV cache.
//!
//! - [`block_manager`]: free list, refcounts and the prefix cache of KV blocks.
//! - [`scheduler`]: continuous batching with chunked prefill and preemption; no HTTP, no kernels.
//! - [`engine`]: the thread that owns the backend and scheduler and streams text per request.
//! - [`api`]: OpenAI request parsing / response shapes; [`http`]: the axum server around it.
//! - [`metrics`]: Prometheus text exposition.
//! - [`tools`]: function calling: tools, the schemas of forced calls, the models' tool-call formats.
pub mod api;
pub mod block_manager;
pub mod engine;
pub mod http;
pub mod metrics;
pub mod scheduler;
pub mod tools;

/// Chat templates: the model's own (Jinja), ChatML when it has none.
pub use crate::model::chat;

use crate::backend::cpu::CpuQuant;
use crate::backend::paged::{self as paged, PagedBackend};
use crate::backend::BackendKind;
use crate::error::{Error, Result};
use crate::model::tokenizer::Tokenizer;
use crate::model::ModelWeights;
use crate::util::errln;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Everything `trtforge serve` needs (the CLI fills it in).
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// A GGUF file, an HF checkpoint directory or `preset:NAME` (presets have no tokenizer).
    pub model: Option<String>,
    /// An engine directory made by `trtforge convert`.
    pub engine_dir: Option<PathBuf>,
    /// A tokenizer (tokenizer.json or a GGUF file) instead of the model's own: how a `preset:`
    /// model (random weights, no tokenizer) serves text.
    pub tokenizer: Option<PathBuf>,
    pub backend: BackendKind,
    pub host: String,
    /// 0 picks a free port (the address is printed).
    pub port: u16,
    pub max_num_seqs: usize,
    pub max_num_batched_tokens: usize,
    /// KV cache pool size in bytes (None: [`kv_budget`]'s default).
    pub kv_cache_memory: Option<u64>,
    /// KV cache format of a `--model` run (None: fp16); 8-bit caches get calibrated per-head
    /// scales ([`calibrate_kv`]). An engine directory brings its own.
    pub kv_cache: Option<crate::quant::kv::KvCacheDtype>,
    /// Size the pool from this fraction of the GPU's memory instead (cuda backend).
    pub gpu_memory_utilization: Option<f64>,
    /// Requests allowed to wait beyond `max_num_seqs`; more get 429.
    pub max_queue: usize,
    pub served_model_name: Option<String>,
    /// Cap on prompt + output tokens (default: the model context, capped by the pool).
    pub max_model_len: Option<usize>,
    pub prefix_caching: bool,
    /// Time running requests get to finish after SIGTERM/SIGINT.
    pub drain_timeout: Duration,
    /// Origins allowed to call from a browser (CORS); `*`: any.
    pub allowed_origins: Vec<String>,
    /// The tool-call format `tool_choice` "auto" reads: None, the chat template's (if it writes one);
    /// `Some(None)`: none ("auto" refused).
    pub tool_call_parser: Option<Option<tools::ToolFormat>>,
}

/// What the server runs: weights (float; a quantized engine dir's dequantized for the CPU), the
/// engine dir's stored codes for the GPU, and its precision.
struct Loaded {
    weights: ModelWeights,
    quantized: Option<crate::quant::QuantizedModel>,
    precision: Option<crate::quant::WeightFormat>,
    tokenizer: Tokenizer,
    name: String,
    /// fp8 linear inputs / a quantized KV cache of an engine dir (the CPU backend rounds as it does).
    quant: CpuQuant,
}

/// Reads a tokenizer file: a GGUF file's `tokenizer.*` metadata, or an HF tokenizer.json.
pub fn load_tokenizer(path: &std::path::Path) -> Result<Tokenizer> {
    let mut magic = [0u8; 4];
    let is_gguf = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .map(|_| &magic == b"GGUF")
        .map_err(|e| Error::Invalid(format!("cannot read the tokenizer {}: {e}", path.display())))?;
    if is_gguf {
        Tokenizer::from_gguf_vocab(crate::model::gguf::GgufFile::open(path)?.tokenizer_vocab()?)
    } else {
        Tokenizer::from_file(path)
    }
}

/// Checks that every id of `tok` is a row of the model's embedding.
fn check_vocab(tok: &Tokenizer, vocab_size: usize, what: &str) -> Result<()> {
    if tok.vocab_size() > vocab_size {
        return Err(Error::Invalid(format!(
            "{what} has {} tokens, more than the model's vocabulary of {vocab_size}: its ids would index past the embedding",
            tok.vocab_size()
        )));
    }
    Ok(())
}

fn load(o: &ServeOptions) -> Result<Loaded> {
    let (weights, quantized, precision, tok, name, quant) = load_model(o)?;
    let tokenizer = match &o.tokenizer {
        Some(p) => {
            let t = load_tokenizer(p)?;
            check_vocab(&t, weights.config.vocab_size, &format!("the tokenizer {}", p.display()))?;
            t
        }
        None => tok.ok_or_else(|| {
            Error::Invalid(format!(
                "{} has no tokenizer; serving text needs one: give --tokenizer FILE (tokenizer.json or a GGUF file)",
                o.model.as_deref().unwrap_or("the model")
            ))
        })?,
    };
    for w in tokenizer.warnings() {
        errln!("warning: tokenizer: {w}");
    }
    Ok(Loaded { weights, quantized, precision, tokenizer, name, quant })
}

type LoadedParts = (
    ModelWeights,
    Option<crate::quant::QuantizedModel>,
    Option<crate::quant::WeightFormat>,
    Option<Tokenizer>,
    String,
    CpuQuant,
);

/// Weights, tokenizer and a default model name for the options' model or engine directory.
/// The weights, quantized codes, precision, tokenizer, default model name, and what an engine dir
/// rounds beyond its weights.
fn load_model(o: &ServeOptions) -> Result<LoadedParts> {
    match (&o.model, &o.engine_dir) {
        (Some(spec), None) => {
            let m = crate::model::load::load(spec)?;
            if let Some(w) = m.unused_warning() {
                errln!("warning: {w}");
            }
            let tok = m.tokenizer;
            let name = match &m.source {
                crate::model::load::ModelSource::Preset { name, .. } => name.clone(),
                crate::model::load::ModelSource::Gguf(p) | crate::model::load::ModelSource::Hf(p) => {
                    p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into())
                }
            };
            let (weights, kv) = calibrate_kv(m.weights, o.kv_cache)?;
            Ok((weights, None, None, tok, name, CpuQuant { kv, ..Default::default() }))
        }
        (None, Some(dir)) => {
            let man = crate::engine_dir::Manifest::load(dir)?;
            let tok = man.tokenizer.as_ref().map(|f| Tokenizer::from_file(&dir.join(f))).transpose()?;
            // As `open_engine_dir` does: float engines run their source weights, quantized ones
            // their stored codes (the GPU as they are, the CPU dequantized).
            // with fp8 activation scales and the KV cache format applied where the engine rounds.
            let (weights, quantized, input_scales) = if !man.precision.is_quantized() {
                (crate::model::load::load(&man.source_model(dir)?)?.weights, None, Default::default())
            } else {
                let mut e = crate::engine_dir::load_engine_weights(dir)?;
                let scales = std::mem::take(&mut e.quantized.input_scales);
                (e.weights, Some(e.quantized), scales)
            };
            let quant = CpuQuant { input_scales, kv: crate::backend::kv_quant_of(&man, dir)?, ..Default::default() };
            Ok((weights, quantized, Some(man.precision), tok, man.name.clone(), quant))
        }
        (Some(_), Some(_)) => Err(Error::Invalid("give --model or --engine-dir, not both".into())),
        (None, None) => Err(Error::Invalid("give --model or --engine-dir".into())),
    }
}

/// An 8-bit KV cache for a `--model` run: static per-head scales from the CPU reference's K/V on a
/// seeded 32-token prompt (seed 0), as `bench --kv-cache` gets them for a preset (which has no
/// calibration texts); fp8 centres and rotates K first where the model's heads fit, as a config's
/// `kv_cache: fp8` does (`engine_dir::config::kv_rotate_default`). fp16 / None: no
/// quantization. Gives the weights back.
pub fn calibrate_kv(
    weights: ModelWeights,
    dtype: Option<crate::quant::kv::KvCacheDtype>,
) -> Result<(ModelWeights, Option<crate::backend::cpu::KvQuant>)> {
    let Some(dtype) = dtype.filter(|d| d.quantized()) else { return Ok((weights, None)) };
    let w = Arc::new(weights);
    let prompts = crate::util::seeded_prompts(&[32], w.config.vocab_size, 0);
    let rotate = crate::engine_dir::config::kv_rotate_default(dtype, &w.config);
    let kv = crate::backend::cpu::KvQuant::calibrate_recipe(w.clone(), dtype, &prompts, rotate)?;
    let weights = Arc::try_unwrap(w).unwrap_or_else(|w| (*w).clone());
    Ok((weights, Some(kv)))
}

/// The cpu backend's KV pool without `--kv-cache-memory`.
pub const DEFAULT_KV_CACHE_BYTES: u64 = 256 << 20;
/// The cuda backend's default pool is at most what this fraction of the device's memory leaves.
pub const DEFAULT_GPU_FRACTION: f64 = 0.9;

/// The KV pool a server opens its backend with: (bytes, fraction of the GPU's memory), as
/// [`paged::PagedOptions`] takes them (both set: the smaller). `--kv-cache-memory` or
/// `--gpu-memory-utilization` when given; otherwise the cpu backend gets 256 MiB and the cuda
/// backend room for `max_num_seqs` sequences of the full context (`--max-model-len` or the
/// model's; `kv_elem_bytes` per cached element), capped by [`DEFAULT_GPU_FRACTION`] — so a GPU
/// server started with defaults never preempts for blocks and leaves the rest of the device free.
pub fn kv_budget(o: &ServeOptions, c: &crate::model::LlamaConfig, kv_elem_bytes: usize) -> (u64, Option<f64>) {
    match (o.kv_cache_memory, o.gpu_memory_utilization) {
        (Some(b), f) => (b, f),
        (None, Some(f)) => (0, Some(f)),
        (None, None) if o.backend == BackendKind::Cuda => {
            let len = o.max_model_len.unwrap_or(c.max_position_embeddings).min(c.max_position_embeddings);
            let per_seq = len.div_ceil(paged::BLOCK_SIZE) as u64 * paged::block_bytes(c, kv_elem_bytes) as u64;
            (per_seq * o.max_num_seqs as u64, Some(DEFAULT_GPU_FRACTION))
        }
        (None, None) => (DEFAULT_KV_CACHE_BYTES, None),
    }
}

/// Checks the numeric options before anything is loaded.
fn check_options(o: &ServeOptions) -> Result<()> {
    if o.max_num_seqs == 0 {
        return Err(Error::Invalid("--max-num-seqs must be at least 1".into()));
    }
    if o.max_num_batched_tokens == 0 {
        return Err(Error::Invalid("--max-num-batched-tokens must be at least 1".into()));
    }
    if let Some(f) = o.gpu_memory_utilization {
        if !(f > 0.0 && f <= 1.0) {
            return Err(Error::Invalid(format!("--gpu-memory-utilization must be in (0, 1], got {f}")));
        }
        if o.backend != BackendKind::Cuda {
            return Err(Error::Invalid(
                "--gpu-memory-utilization sizes a GPU's KV cache; the cpu backend takes --kv-cache-memory".into(),
            ));
        }
    }
    if o.kv_cache.is_some() && o.engine_dir.is_some() {
        return Err(Error::Invalid(
            "--kv-cache applies to --model; an engine directory's KV cache format is fixed when it is built".into(),
        ));
    }
    if o.max_model_len == Some(0) {
        return Err(Error::Invalid("--max-model-len must be at least 1".into()));
    }
    if o.served_model_name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(Error::Invalid("--served-model-name must not be empty".into()));
    }
    paged::check_backend(o.backend)
}

/// Loads the model, starts the engine thread and serves HTTP until SIGTERM/SIGINT.
pub fn run(o: &ServeOptions) -> Result<()> {
    check_options(o)?;
    let t0 = std::time::Instant::now();
    // The port first: a port in use (or a host that is not ours) is an error before a model is loaded, not after.
    let addr = format!("{}:{}", o.host, o.port);
    let listener =
        std::net::TcpListener::bind(&addr).map_err(|e| Error::Invalid(format!("cannot listen on {addr}: {e}")))?;
    let Loaded { weights, quantized, precision, tokenizer, name: default_name, quant } = load(o)?;
    let cfg = weights.config.clone();
    if let Some(m) = o.max_model_len.filter(|&m| m > cfg.max_position_embeddings) {
        return Err(Error::Invalid(format!(
            "--max-model-len {m} is beyond the model's context of {} tokens (max_position_embeddings); give at most that",
            cfg.max_position_embeddings
        )));
    }
    let kv_elem = match (&quant.kv, precision) {
        (Some(k), _) if k.dtype.quantized() => 1,
        (_, Some(crate::quant::WeightFormat::F32)) => 4,
        _ => 2,
    };
    let (kv_cache_bytes, gpu_memory_utilization) = kv_budget(o, &cfg, kv_elem);
    let po = paged::PagedOptions {
        kv_cache_bytes,
        gpu_memory_utilization,
        max_num_seqs: o.max_num_seqs,
        max_num_batched_tokens: o.max_num_batched_tokens,
        precision,
    };
    let backend: Box<dyn PagedBackend> =
        crate::backend::open_paged(o.backend, Arc::new(weights), quantized.as_ref(), quant, &po)?;
    let max_model_len = o.max_model_len.unwrap_or(usize::MAX).min(backend.max_model_len());
    let num_blocks = backend.num_blocks();
    let mut stop_ids = tokenizer.eos_ids();
    if let Some(e) = cfg.eos_token_id {
        if !stop_ids.contains(&e) {
            stop_ids.push(e);
        }
    }
    let chat = chat::ChatTemplate::from_model(&tokenizer)?;
    if chat.is_fallback() {
        errln!("note: the model ships no chat template; /v1/chat/completions formats conversations as ChatML");
    }
    let detected = tools::ToolFormat::detect(chat.source());
    let tool_format = o.tool_call_parser.unwrap_or(detected);
    match (tool_format, o.tool_call_parser.is_some()) {
        (Some(f), false) => errln!("tool calls: the chat template's {} format (tool_choice \"auto\")", f.name()),
        (Some(f), true) => errln!("tool calls: the {} format (--tool-call-parser)", f.name()),
        (None, _) => errln!(
            "tool calls: tool_choice \"required\" and named functions only (constrained decoding); \"auto\" needs a \
chat template with a tool-call format or --tool-call-parser"
        ),
    }
    // One tokenizer for the process; the engine's stream decoders borrow it for 'static.
    let tokenizer: &'static Tokenizer = Box::leak(Box::new(tokenizer));
    let sched = scheduler::SchedulerConfig {
        max_num_seqs: o.max_num_seqs,
        max_num_batched_tokens: o.max_num_batched_tokens,
        max_model_len,
        num_blocks,
        prefix_caching: o.prefix_caching,
        max_prefill_with_decodes: std::env::var("TRTFORGE_SERVE_PREFILL_CAP").ok().and_then(|v| v.parse().ok()),
    };
    let mut backend = backend;
    let tw = std::time::Instant::now();
    if let Some(what) = backend.warm_up()? {
        errln!("warm-up: {what} ({:.2} s in all)", tw.elapsed().as_secs_f64());
    }
    let kv_bytes = backend.kv_cache_bytes() as f64;
    let kv_mib = kv_bytes / (1 << 20) as f64;
    let (kv_format, kv_per_token) = backend.kv_format();
    // What the pool holds a token in, when that differs from the format's own bytes (the CPU
    // backend keeps an 8-bit cache's rounded values as f32).
    let held = kv_bytes / (num_blocks * paged::BLOCK_SIZE).max(1) as f64;
    let held = if (held - kv_per_token).abs() > 0.5 {
        format!(" (the {} backend's pool holds {held:.0} bytes per token)", backend.name())
    } else {
        String::new()
    };
    let backend_name = backend.name();
    let engine = engine::Engine::start(backend, tokenizer, sched, stop_ids)
        .map_err(|e| Error::Invalid(format!("could not start the engine thread: {e}")))?;
    let name = o.served_model_name.clone().unwrap_or(default_name);
    let mut state = http::AppState::new(engine, name.clone(), chat, o.max_num_seqs + o.max_queue);
    state.allowed_origins = o.allowed_origins.clone();
    state.set_tool_format(tool_format);
    let state = Arc::new(state);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // off_workers' parsing / templating: CPU work, so no more threads than cores help (the default allows 512)
        .max_blocking_threads(std::thread::available_parallelism().map_or(4, |n| n.get().clamp(2, 16)))
        .enable_all()
        .build()
        .map_err(|e| Error::Invalid(format!("could not start the async runtime: {e}")))?;
    rt.block_on(async move {
        let listener = listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(listener))
            .map_err(|e| Error::Invalid(format!("cannot listen on {addr}: {e}")))?;
        let local = listener.local_addr().map_err(|e| Error::Invalid(format!("listener address: {e}")))?;
        errln!(
            "serving {name:?} on the {backend_name} backend: {num_blocks} KV blocks of {} tokens ({kv_mib:.1} MiB), KV cache {kv_format} at {kv_per_token:.0} bytes per token{held}, max model length {max_model_len}, up to {} sequences per step; loaded in {:.1} s",
            paged::BLOCK_SIZE,
            o.max_num_seqs,
            t0.elapsed().as_secs_f64()
        );
        if o.kv_cache_memory.is_none() && o.gpu_memory_utilization.is_none() && o.backend == BackendKind::Cuda {
            errln!(
                "KV pool: the default for the GPU, room for --max-num-seqs {} sequences of the full context (at most {} of the device's memory; --kv-cache-memory or --gpu-memory-utilization choose)",
                o.max_num_seqs, DEFAULT_GPU_FRACTION
            );
        }
        errln!("listening on http://{local}");
        http::serve(listener, state, o.drain_timeout).await.map_err(|e| Error::Invalid(format!("server error: {e}")))
    })?;
    errln!("server stopped");
    Ok(())
}

/// Parses a byte size: `268435456`, `256MiB`, `256MB`, `1GiB`, `512M`, `2G`, `64K`.
pub fn parse_bytes(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().map_err(|_| format!("{s:?} is not a size (e.g. 256MiB, 1GiB, 1000000)"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "kb" => 1e3,
        "m" | "mib" => 1024.0 * 1024.0,
        "mb" => 1e6,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "gb" => 1e9,
        u => return Err(format!("unknown size unit {u:?} in {s:?} (use B, KiB, MiB, GiB, KB, MB, GB)")),
    };
    let b = v * mult;
    if !b.is_finite() || b < 1.0 {
        return Err(format!("{s:?} is not a positive size"));
    }
    Ok(b as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(backend: BackendKind) -> ServeOptions {
        ServeOptions {
            model: None,
            engine_dir: None,
            tokenizer: None,
            backend,
            host: String::new(),
            port: 0,
            max_num_seqs: 64,
            max_num_batched_tokens: 512,
            kv_cache_memory: None,
            kv_cache: None,
            gpu_memory_utilization: None,
            max_queue: 0,
            served_model_name: None,
            max_model_len: None,
            prefix_caching: true,
            drain_timeout: Duration::ZERO,
            allowed_origins: vec!["*".into()],
            tool_call_parser: None,
        }
    }

    #[test]
    fn kv_pool_defaults() {
        let c = crate::model::LlamaConfig::preset("tinyllama-1.1b").unwrap();
        // cpu: 256 MiB; an explicit size or fraction wins.
        assert_eq!(kv_budget(&opts(BackendKind::Cpu), &c, 4), (256 << 20, None));
        let o = ServeOptions { kv_cache_memory: Some(1 << 30), ..opts(BackendKind::Cuda) };
        assert_eq!(kv_budget(&o, &c, 2), (1 << 30, None));
        let o = ServeOptions { gpu_memory_utilization: Some(0.5), ..opts(BackendKind::Cuda) };
        assert_eq!(kv_budget(&o, &c, 2), (0, Some(0.5)));
        // cuda: 64 sequences of 2,048 tokens (128 blocks of 16 x 22 layers x K,V x 256 x 2 bytes),
        // within 0.9 of the device; an 8-bit cache needs half, --max-model-len caps the length.
        let block = 2 * 22 * 16 * 256 * 2;
        assert_eq!(kv_budget(&opts(BackendKind::Cuda), &c, 2), (64 * 128 * block, Some(DEFAULT_GPU_FRACTION)));
        assert_eq!(kv_budget(&opts(BackendKind::Cuda), &c, 1).0, 64 * 128 * block / 2);
        let o = ServeOptions { max_model_len: Some(200), ..opts(BackendKind::Cuda) };
        assert_eq!(kv_budget(&o, &c, 2).0, 64 * 13 * block);
    }
}
