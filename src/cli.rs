//! The `trtforge` command line. Library errors are typed; here they become anyhow messages.
use crate::backend::{cpu::CpuBackend, Backend};
use crate::eval;
use crate::generate::{generate_batch, SamplingParams, StopCriteria};
use crate::model::load::{load, LoadedModel};
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
}

#[derive(Args)]
struct ModelArgs {
    /// A GGUF file, an HF checkpoint directory, or `preset:NAME[:SEED]` (seeded random weights).
    #[arg(long)]
    model: String,
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
    #[command(flatten)]
    model: ModelArgs,
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

fn need_tokenizer<'a>(m: &'a LoadedModel, what: &str) -> Result<&'a Tokenizer> {
    m.tokenizer.as_ref().with_context(|| {
        format!("{} has no tokenizer, which {what} needs (give --prompt-ids for presets)", m.source)
    })
}

fn cmd_generate(a: GenerateArgs) -> Result<()> {
    let m = load_model(&a.model.model)?;
    let tok = m.tokenizer.as_ref();
    let prompt_ids: Vec<u32> = match (&a.prompt, &a.prompt_ids) {
        (Some(p), _) => {
            if p.is_empty() {
                bail!("the prompt is empty");
            }
            let t = need_tokenizer(&m, "--prompt")?;
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
    let cfg = &m.weights.config;
    let need = prompt_ids.len() + a.max_new_tokens;
    if need > cfg.max_position_embeddings {
        bail!(
            "prompt ({} tokens) + --max-new-tokens ({}) = {need} exceeds the model's context of {} tokens",
            prompt_ids.len(),
            a.max_new_tokens,
            cfg.max_position_embeddings
        );
    }
    let params = SamplingParams {
        greedy: a.greedy,
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: a.top_p,
        repetition_penalty: a.repetition_penalty,
        seed: a.seed,
        max_new_tokens: a.max_new_tokens,
    };
    let mut eos: Vec<u32> = tok.map(|t| t.eos_ids()).unwrap_or_default();
    if let Some(e) = cfg.eos_token_id {
        if !eos.contains(&e) {
            eos.push(e);
        }
    }
    let detok = |ids: &[u32]| tok.and_then(|t| t.decode(ids, true).ok()).unwrap_or_default();
    let stop = StopCriteria { eos: &eos, stop_strings: &a.stop, detok: Some(&detok) };
    let weights = Arc::new(m.weights);
    let mut backend = CpuBackend::new(weights, 1, need)?;
    let mut stream = tok.filter(|_| !a.print_ids).map(|t| t.stream_decoder());
    let mut stdout = std::io::stdout().lock();
    let t0 = Instant::now();
    let mut first: Option<f64> = None;
    let outs = generate_batch(&mut backend as &mut dyn Backend, &[prompt_ids.clone()], &params, &stop, |_, id| {
        first.get_or_insert_with(|| t0.elapsed().as_secs_f64());
        if let Some(s) = stream.as_mut() {
            if let Ok(Some(text)) = s.step(id) {
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
            }
        }
    })?;
    let out = &outs[0];
    if let Some(s) = stream.as_mut() {
        if let Ok(Some(rest)) = s.flush() {
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
        "{} prompt tokens, {n} new tokens ({:?}); time to first token {:.0} ms, decode {:.1} tok/s (cpu, {} threads)",
        prompt_ids.len(),
        out.stop,
        ttft * 1e3,
        decode_rate,
        rayon::current_num_threads()
    );
    Ok(())
}

fn cmd_eval(a: EvalArgs) -> Result<()> {
    let m = load_model(&a.model.model)?;
    let tok = need_tokenizer(&m, "eval")?;
    let text = std::fs::read_to_string(&a.text).with_context(|| format!("reading {}", a.text.display()))?;
    if text.trim().is_empty() {
        bail!("{} is empty", a.text.display());
    }
    let ids = tok.encode(&text, false)?;
    let cfg = &m.weights.config;
    if a.ctx > cfg.max_position_embeddings {
        bail!("--ctx {} exceeds the model's context of {} tokens", a.ctx, cfg.max_position_embeddings);
    }
    let mut backend = CpuBackend::new(Arc::new(m.weights), 1, a.ctx)?;
    let t0 = Instant::now();
    let rep = eval::perplexity(&mut backend, &ids, a.ctx, a.windows, |done, total| {
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

fn cmd_info(a: InfoArgs) -> Result<()> {
    let m = load_model(&a.model.model)?;
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
