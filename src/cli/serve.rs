//! `trtforge serve`: parsing only; the server is crate::serve.
use crate::backend::BackendKind;
use crate::serve::{parse_bytes, ServeOptions};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct ServeArgs {
    /// A GGUF file or an HF checkpoint directory (with its tokenizer).
    #[arg(long, required_unless_present = "engine_dir", conflicts_with = "engine_dir")]
    model: Option<String>,
    /// An engine directory made by `trtforge convert`.
    #[arg(long)]
    engine_dir: Option<PathBuf>,
    /// Tokenizer to serve with (tokenizer.json or a GGUF file) instead of the model's own, e.g. for
    /// `--model preset:tinyllama-1.1b`; its vocabulary must fit the model's.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Execution backend with a paged KV cache: cpu or cuda.
    #[arg(long, value_enum, default_value_t = BackendKind::Cpu)]
    backend: BackendKind,
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// TCP port (0: any free port; the address is printed as `listening on http://...`).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Most sequences in one step.
    #[arg(long, default_value_t = 64)]
    max_num_seqs: usize,
    /// Most tokens (prefill chunks + decodes) in one step.
    #[arg(long, default_value_t = 512)]
    max_num_batched_tokens: usize,
    /// KV cache pool size: bytes or with a unit (256MiB, 1GiB, 500MB). Default: 256MiB on the cpu
    /// backend; on cuda room for --max-num-seqs sequences of the full context (--max-model-len or
    /// the model's), at most what 0.9 of the GPU's memory leaves after the weights.
    #[arg(long, value_parser = parse_bytes)]
    kv_cache_memory: Option<u64>,
    /// KV cache format for a --model run: fp16 (default), fp8 or int8. 8-bit caches take half the
    /// bytes per token (twice the blocks of the same --kv-cache-memory) and get static per-head
    /// scales calibrated by the CPU reference on a short seeded prompt, as `bench --kv-cache` does;
    /// fp8 centres and rotates K first where the heads fit, as a config's `kv_cache: fp8` does (an
    /// engine directory's cache format is fixed when it is built).
    #[arg(long, conflicts_with = "engine_dir", value_parser = parse_kv_cache)]
    kv_cache: Option<crate::quant::kv::KvCacheDtype>,
    /// Size the KV pool from the GPU instead (cuda backend; vLLM's flag): the server may use this
    /// fraction of the device's memory, and the pool gets what the weights, workspace and other
    /// processes leave of it (e.g. 0.9).
    #[arg(long, conflicts_with = "kv_cache_memory")]
    gpu_memory_utilization: Option<f64>,
    /// Requests that may wait beyond --max-num-seqs; more are answered 429.
    #[arg(long, default_value_t = 256)]
    max_queue: usize,
    /// The model name clients use (default: the model file's stem or the engine's name).
    #[arg(long)]
    served_model_name: Option<String>,
    /// Longest prompt + output (default: the model context, capped by the KV pool).
    #[arg(long)]
    max_model_len: Option<usize>,
    /// Do not share KV blocks between requests with the same prompt prefix.
    #[arg(long)]
    no_prefix_caching: bool,
    /// Seconds running requests get to finish after SIGTERM/SIGINT.
    #[arg(long, default_value_t = 5.0)]
    drain_timeout: f64,
    /// Web origins whose pages may call the server from a browser (CORS; vLLM's flag), comma-separated, e.g.
    /// http://localhost:3000; `*` (the default, as vLLM's) allows any.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    allowed_origins: Vec<String>,
    /// The tool-call format `tool_choice` "auto" reads in replies (vLLM's flag): hermes (`<tool_call>` blocks),
    /// llama3_json or mistral (`[TOOL_CALLS]`); auto: the one the model's chat template writes, if any; none:
    /// "auto" refused. "required" and named functions work with any model (decoding constrained to the schemas).
    #[arg(long, default_value = "auto", value_parser = parse_tool_parser)]
    tool_call_parser: ToolParser,
}

#[derive(Clone, Copy, Debug)]
enum ToolParser {
    Auto,
    Set(Option<crate::serve::tools::ToolFormat>),
}

/// `--tool-call-parser auto|none|hermes|llama3_json|mistral`.
fn parse_tool_parser(s: &str) -> Result<ToolParser, String> {
    use crate::serve::tools::ToolFormat;
    match s.trim() {
        "auto" => Ok(ToolParser::Auto),
        "none" => Ok(ToolParser::Set(None)),
        n => ToolFormat::from_name(n).map(|f| ToolParser::Set(Some(f))).ok_or_else(|| {
            format!("{s:?} is not a tool-call format: use auto, none, {}", ToolFormat::NAMES.join(", "))
        }),
    }
}

/// `--kv-cache fp16|fp8|int8`.
fn parse_kv_cache(s: &str) -> Result<crate::quant::kv::KvCacheDtype, String> {
    serde_json::from_value(serde_json::json!(s.trim().to_ascii_lowercase()))
        .map_err(|_| format!("{s:?} is not a KV cache format: use fp16, fp8 or int8"))
}

pub fn run(a: ServeArgs) -> anyhow::Result<()> {
    if !(a.drain_timeout >= 0.0 && a.drain_timeout <= 3600.0) {
        anyhow::bail!("--drain-timeout must be between 0 and 3600 seconds, got {}", a.drain_timeout);
    }
    let o = ServeOptions {
        model: a.model,
        engine_dir: a.engine_dir,
        tokenizer: a.tokenizer,
        backend: a.backend,
        host: a.host,
        port: a.port,
        max_num_seqs: a.max_num_seqs,
        max_num_batched_tokens: a.max_num_batched_tokens,
        kv_cache_memory: a.kv_cache_memory,
        kv_cache: a.kv_cache,
        gpu_memory_utilization: a.gpu_memory_utilization,
        max_queue: a.max_queue,
        served_model_name: a.served_model_name,
        max_model_len: a.max_model_len,
        prefix_caching: !a.no_prefix_caching,
        drain_timeout: std::time::Duration::from_secs_f64(a.drain_timeout),
        allowed_origins: a
            .allowed_origins
            .into_iter()
            .map(|o| o.trim().to_string())
            .filter(|o| !o.is_empty())
            .collect(),
        tool_call_parser: match a.tool_call_parser {
            ToolParser::Auto => None,
            ToolParser::Set(f) => Some(f),
        },
    };
    crate::serve::run(&o)?;
    Ok(())
}
