//! The `trtforge` command line. Library errors are typed; here they become anyhow messages.
use crate::backend::{cpu::CpuBackend, ort::OrtBackend, Backend};
use crate::config::EngineConfig;
use crate::manifest::Manifest;
use crate::eval;
use crate::generate::{generate_batch, SamplingParams, StopCriteria};
use crate::model::load::{load, LoadedModel};
use crate::model::LlamaConfig;
use crate::model::tokenizer::{ChatMessage, Tokenizer};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "trtforge", version, about = "Export, quantize, compile and benchmark small Llama models")]
struct Cli {
    /// Worker threads for CPU backends (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate text from a prompt; only the generated text goes to stdout.
    Generate(GenerateArgs),
    /// Perplexity of a model on a text file.
    Eval(EvalArgs),
    /// Model config, parameter count, tensor dtypes and memory.
    Info(InfoArgs),
    /// Export a model to an engine directory (ONNX + tokenizer + manifest) as a config describes.
    Convert(ConvertArgs),
    /// Benchmark the CUDA engine: TTFT, decode tok/s, achieved GB/s and % of the memory roofline.
    CudaBench(crate::backend::cuda::cli::BenchArgs),
    /// Check the CUDA engine against the CPU reference (logits, greedy tokens, perplexity).
    CudaCheck(crate::backend::cuda::cli::CheckArgs),
}

#[derive(Args)]
struct ConvertArgs {
    /// Engine config (YAML).
    #[arg(long)]
    config: PathBuf,
    /// Replace an existing output directory.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct ModelArgs {
    /// A GGUF file, an HF checkpoint directory, or `preset:NAME[:SEED]` (seeded random weights).
    #[arg(long, required_unless_present = "engine_dir", conflicts_with = "engine_dir")]
    model: Option<String>,
    /// An engine directory made by `trtforge convert`.
    #[arg(long)]
    engine_dir: Option<PathBuf>,
    /// Execution backend: cpu (f32 reference), ort (ONNX Runtime on the engine dir's model.onnx)
    /// or cuda (native CUDA engine).
    #[arg(long, value_enum, default_value_t = BackendKind::Cpu)]
    backend: BackendKind,
    /// --backend cuda with --model: weight precision (fp32, fp16, int8, int4). With --engine-dir
    /// the manifest's precision is used.
    #[arg(long, default_value = "fp16")]
    precision: String,
    /// --backend cuda, int4: quantization group size along the input dim.
    #[arg(long, default_value_t = 128)]
    group_size: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BackendKind {
    Cpu,
    Ort,
    Cuda,
}

/// What a command runs on: a backend plus the tokenizer and config that go with it.
struct Runner {
    backend: Box<dyn Backend>,
    tokenizer: Option<Tokenizer>,
    label: String,
}

impl ModelArgs {
    /// Opens the requested backend with a KV cache for `max_batch` × `max_seq` tokens.
    fn open(&self, max_batch: usize, max_seq: impl Fn(&crate::model::LlamaConfig) -> usize) -> Result<Runner> {
        match (&self.model, &self.engine_dir, self.backend) {
            (Some(spec), _, BackendKind::Cpu) => {
                let m = load_model(spec)?;
                let n = max_seq(&m.weights.config);
                let label = m.source.to_string();
                let backend = Box::new(CpuBackend::new(Arc::new(m.weights), max_batch, n)?);
                Ok(Runner { backend, tokenizer: m.tokenizer, label })
            }
            (Some(spec), _, BackendKind::Cuda) => {
                let m = load_model(spec)?;
                let n = max_seq(&m.weights.config);
                let label = m.source.to_string();
                let prec = crate::backend::cuda::CudaPrecision::parse(&self.precision, self.group_size)?;
                let backend = Box::new(crate::backend::cuda::cli::open(&m.weights, prec, max_batch, n)?);
                Ok(Runner { backend, tokenizer: m.tokenizer, label })
            }
            (Some(_), _, BackendKind::Ort) => bail!("--backend ort runs an engine directory: give --engine-dir (made by `trtforge convert`)"),
            (None, Some(dir), kind) => {
                let man = Manifest::load(dir)?;
                let tokenizer = match &man.tokenizer {
                    Some(t) => Some(Tokenizer::from_file(&dir.join(t))?),
                    None => None,
                };
                let n = max_seq(&man.model_config).min(man.build.max_seq_len);
                let label = format!("{} ({})", dir.display(), man.precision.as_str());
                let backend: Box<dyn Backend> = match kind {
                    BackendKind::Ort => {
                        let t = Instant::now();
                        let b = OrtBackend::open(dir, max_batch, n)?;
                        eprintln!("opened {} with ONNX Runtime in {:.2} s", dir.display(), t.elapsed().as_secs_f64());
                        Box::new(b)
                    }
                    BackendKind::Cuda => {
                        // The CUDA engine quantizes the source weights itself (round-to-nearest)
                        // at the manifest's precision.
                        let m = load_model(&man.source.spec)?;
                        let group = man.extra.get("quantization").and_then(|q| q.get("group_size")).and_then(|g| g.as_u64());
                        let prec = crate::backend::cuda::CudaPrecision::parse(man.precision.as_str(), group.unwrap_or(128) as usize)?;
                        Box::new(crate::backend::cuda::cli::open(&m.weights, prec, max_batch, n)?)
                    }
                    BackendKind::Cpu => {
                        // The CPU reference runs the engine's source weights.
                        let m = load_model(&man.source.spec)?;
                        Box::new(CpuBackend::new(Arc::new(m.weights), max_batch, n)?)
                    }
                };
                Ok(Runner { backend, tokenizer, label })
            }
            (None, None, _) => bail!("give --model or --engine-dir"),
        }
    }
}

#[derive(Args)]
struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Prompt text.
    #[arg(long, conflicts_with = "prompt_ids")]
    prompt: Option<String>,
    /// Prompt as comma-separated token ids (for models without a tokenizer, e.g. presets).
    #[arg(long, value_delimiter = ',')]
    prompt_ids: Option<Vec<u32>>,
    /// Wrap the prompt in the model's chat template (ChatML).
    #[arg(long)]
    chat: bool,
    /// System message for --chat.
    #[arg(long, requires = "chat")]
    system: Option<String>,
    /// Argmax decoding (same as --temperature 0).
    #[arg(long)]
    greedy: bool,
    #[arg(long, default_value_t = 128)]
    max_new_tokens: usize,
    #[arg(long, default_value_t = 0.7)]
    temperature: f32,
    /// Keep the K most likely tokens (0 = off).
    #[arg(long, default_value_t = 50)]
    top_k: usize,
    /// Nucleus sampling threshold (1 = off).
    #[arg(long, default_value_t = 0.9)]
    top_p: f32,
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop when the generated text contains this string (repeatable).
    #[arg(long = "stop")]
    stop: Vec<String>,
    /// Print the generated token ids instead of text.
    #[arg(long)]
    print_ids: bool,
}

#[derive(Args)]
struct EvalArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// UTF-8 text file to score.
    #[arg(long)]
    text: PathBuf,
    /// Window length in tokens.
    #[arg(long, default_value_t = 512)]
    ctx: usize,
    /// Score at most this many windows (default: all).
    #[arg(long)]
    windows: Option<usize>,
    /// Print a JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct InfoArgs {
    /// A GGUF file, an HF checkpoint directory, or `preset:NAME[:SEED]`.
    #[arg(long)]
    model: String,
    #[arg(long)]
    json: bool,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(n).build_global() {
            eprintln!("warning: could not set {n} threads: {e}");
        }
    }
    let res = match cli.cmd {
        Command::Generate(a) => cmd_generate(a),
        Command::Eval(a) => cmd_eval(a),
        Command::Info(a) => cmd_info(a),
        Command::Convert(a) => cmd_convert(a),
        Command::CudaBench(a) => crate::backend::cuda::cli::cmd_bench(a),
        Command::CudaCheck(a) => crate::backend::cuda::cli::cmd_check(a),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_model(spec: &str) -> Result<LoadedModel> {
    let t = Instant::now();
    let m = load(spec).with_context(|| format!("loading model {spec}"))?;
    eprintln!(
        "loaded {} ({:.1} M params) in {:.2} s",
        m.source,
        m.weights.config.param_count() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    Ok(m)
}

fn need_tokenizer<'a>(r: &'a Runner, what: &str) -> Result<&'a Tokenizer> {
    r.tokenizer.as_ref().with_context(|| {
        format!("{} has no tokenizer, which {what} needs (give --prompt-ids for presets)", r.label)
    })
}

fn cmd_generate(a: GenerateArgs) -> Result<()> {
    let max_new = a.max_new_tokens;
    // The cache is sized once the prompt length is known; open with the model's full context first
    // only for tokenization would double the work, so size it at prompt + new tokens below.
    let mut r = a.model.open(1, |c: &LlamaConfig| c.max_position_embeddings)?;
    let tok = r.tokenizer.as_ref();
    let prompt_ids: Vec<u32> = match (&a.prompt, &a.prompt_ids) {
        (Some(p), _) => {
            if p.is_empty() {
                bail!("the prompt is empty");
            }
            let t = need_tokenizer(&r, "--prompt")?;
            if a.chat {
                let mut msgs = Vec::new();
                if let Some(s) = &a.system {
                    msgs.push(ChatMessage { role: "system".into(), content: s.clone() });
                }
                msgs.push(ChatMessage { role: "user".into(), content: p.clone() });
                t.encode(&t.apply_chat_template(&msgs, true), false)?
            } else {
                t.encode(p, true)?
            }
        }
        (None, Some(ids)) => ids.clone(),
        (None, None) => bail!("give --prompt TEXT or --prompt-ids IDS"),
    };
    if prompt_ids.is_empty() {
        bail!("the prompt encodes to no tokens");
    }
    let cfg = r.backend.config().clone();
    let need = prompt_ids.len() + max_new;
    if need > r.backend.max_seq() {
        bail!(
            "prompt ({} tokens) + --max-new-tokens ({max_new}) = {need} exceeds the {} tokens this model/engine supports",
            prompt_ids.len(),
            r.backend.max_seq()
        );
    }
    let params = SamplingParams {
        greedy: a.greedy,
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: a.top_p,
        repetition_penalty: a.repetition_penalty,
        seed: a.seed,
        max_new_tokens: max_new,
    };
    let mut eos: Vec<u32> = tok.map(|t| t.eos_ids()).unwrap_or_default();
    if let Some(e) = cfg.eos_token_id {
        if !eos.contains(&e) {
            eos.push(e);
        }
    }
    let detok = |ids: &[u32]| tok.and_then(|t| t.decode(ids, true).ok()).unwrap_or_default();
    let stop = StopCriteria { eos: &eos, stop_strings: &a.stop, detok: Some(&detok) };
    let mut stream = tok.filter(|_| !a.print_ids).map(|t| t.stream_decoder(true));
    let mut stdout = std::io::stdout().lock();
    let t0 = Instant::now();
    let mut first: Option<f64> = None;
    let outs = generate_batch(r.backend.as_mut(), &[prompt_ids.clone()], &params, &stop, |_, id| {
        first.get_or_insert_with(|| t0.elapsed().as_secs_f64());
        if let Some(s) = stream.as_mut() {
            if let Ok(text) = s.step(id) {
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
            }
        }
    })?;
    let out = &outs[0];
    if let Some(s) = stream.as_mut() {
        if let Ok(rest) = s.finish() {
            stdout.write_all(rest.as_bytes())?;
        }
    }
    if a.print_ids || tok.is_none() {
        let ids: Vec<String> = out.tokens.iter().map(|t| t.to_string()).collect();
        write!(stdout, "{}", ids.join(","))?;
    }
    writeln!(stdout)?;
    let total = t0.elapsed().as_secs_f64();
    let ttft = first.unwrap_or(total);
    let n = out.tokens.len();
    let decode_rate = if n > 1 { (n - 1) as f64 / (total - ttft).max(1e-9) } else { 0.0 };
    eprintln!(
        "{} prompt tokens, {n} new tokens ({:?}); time to first token {:.0} ms, decode {:.1} tok/s ({}, {} threads)",
        prompt_ids.len(),
        out.stop,
        ttft * 1e3,
        decode_rate,
        r.backend.name(),
        rayon::current_num_threads()
    );
    Ok(())
}

fn cmd_eval(a: EvalArgs) -> Result<()> {
    let ctx = a.ctx;
    let mut r = a.model.open(1, |_| ctx)?;
    let tok = need_tokenizer(&r, "eval")?;
    let text = std::fs::read_to_string(&a.text).with_context(|| format!("reading {}", a.text.display()))?;
    if text.trim().is_empty() {
        bail!("{} is empty", a.text.display());
    }
    let ids = tok.encode(&text, false)?;
    let t0 = Instant::now();
    let rep = eval::perplexity(r.backend.as_mut(), &ids, a.ctx, a.windows, |done, total| {
        eprintln!("window {done}/{total}  ({:.1} s)", t0.elapsed().as_secs_f64());
    })?;
    if a.json {
        println!("{}", serde_json::to_string(&rep)?);
    } else {
        println!(
            "perplexity {:.4} over {} tokens ({} windows of {})",
            rep.perplexity, rep.tokens, rep.windows, rep.ctx
        );
    }
    Ok(())
}

fn cmd_convert(a: ConvertArgs) -> Result<()> {
    let cfg = EngineConfig::load(&a.config)?;
    let t = Instant::now();
    let out = crate::convert::convert(&cfg, a.force, &mut |msg| eprintln!("{msg}"))?;
    eprintln!("converted in {:.1} s", t.elapsed().as_secs_f64());
    println!("{}", out.display());
    Ok(())
}

fn cmd_info(a: InfoArgs) -> Result<()> {
    let m = load_model(&a.model)?;
    let c = &m.weights.config;
    let params = c.param_count();
    let mut dtypes = std::collections::BTreeMap::<&str, usize>::new();
    for (_, d) in &m.tensor_dtypes {
        *dtypes.entry(d.as_str()).or_default() += 1;
    }
    let kv_per_token = 2 * c.num_hidden_layers * c.kv_dim();
    if a.json {
        let v = serde_json::json!({
            "source": m.source.to_string(),
            "config": c,
            "parameters": params,
            "tensor_dtypes": dtypes,
            "memory_bytes": {"f32": params * 4, "f16": params * 2},
            "kv_cache_bytes_per_token_f16": kv_per_token * 2,
            "tokenizer": m.tokenizer.as_ref().map(|t| t.vocab_size()),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("source                  {}", m.source);
    println!("parameters              {} ({:.1} M)", params, params as f64 / 1e6);
    println!("layers                  {}", c.num_hidden_layers);
    println!("hidden / intermediate   {} / {}", c.hidden_size, c.intermediate_size);
    println!(
        "heads / kv heads / dim  {} / {} / {}",
        c.num_attention_heads, c.num_key_value_heads, c.head_dim
    );
    println!("vocab                   {}", c.vocab_size);
    println!("context                 {}", c.max_position_embeddings);
    println!("rope theta / scaling    {} / {}", c.rope_theta, if c.rope_scaling.is_some() { "llama3" } else { "none" });
    println!("rms_norm_eps            {}", c.rms_norm_eps);
    println!("tied embeddings         {}", c.tie_word_embeddings);
    let d: Vec<String> = dtypes.iter().map(|(k, v)| format!("{v} × {k}")).collect();
    println!("tensor dtypes           {}", d.join(", "));
    println!(
        "memory                  {:.1} MB f32 (as loaded), {:.1} MB f16",
        params as f64 * 4.0 / 1e6,
        params as f64 * 2.0 / 1e6
    );
    println!("kv cache (f16)          {} bytes per token", kv_per_token * 2);
    match &m.tokenizer {
        Some(t) => println!("tokenizer               {} tokens", t.vocab_size()),
        None => println!("tokenizer               none"),
    }
    Ok(())
}
