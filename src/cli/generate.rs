//! `trtforge generate`: text (or ids) from a prompt; only the generated text goes to stdout.
use super::{need_tokenizer, ModelArgs};
use crate::backend::json_mode::JsonVocab;
use crate::generate::{generate_constrained, FormatKind, SamplingParams, StopCriteria, TextFormat};
use crate::model::chat::{ChatMessage, ChatTemplate};
use crate::model::LlamaConfig;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Prompt text.
    #[arg(long, conflicts_with = "prompt_ids")]
    pub prompt: Option<String>,
    /// Prompt as comma-separated token ids (for models without a tokenizer, e.g. presets).
    #[arg(long, value_delimiter = ',')]
    pub prompt_ids: Option<Vec<u32>>,
    /// Wrap the prompt in the model's own chat template (ChatML when it has none).
    #[arg(long)]
    pub chat: bool,
    /// System message for --chat.
    #[arg(long, requires = "chat")]
    pub system: Option<String>,
    /// Argmax decoding (same as --temperature 0).
    #[arg(long)]
    pub greedy: bool,
    #[arg(long, default_value_t = 128, value_parser = super::values::tokens0, allow_negative_numbers = true)]
    pub max_new_tokens: usize,
    #[arg(long, default_value_t = 0.7, value_parser = super::values::temperature, allow_negative_numbers = true)]
    pub temperature: f32,
    /// Keep the K most likely tokens (0 = off).
    #[arg(long, default_value_t = 50, value_parser = super::values::tokens0, allow_negative_numbers = true)]
    pub top_k: usize,
    /// Nucleus sampling threshold (1 = off).
    #[arg(long, default_value_t = 0.9, value_parser = super::values::top_p, allow_negative_numbers = true)]
    pub top_p: f32,
    #[arg(long, default_value_t = 1.0, value_parser = super::values::penalty, allow_negative_numbers = true)]
    pub repetition_penalty: f32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop when the generated text contains this string (repeatable).
    #[arg(long = "stop", value_parser = super::values::stop_string)]
    pub stop: Vec<String>,
    /// Print the generated token ids instead of text.
    #[arg(long)]
    pub print_ids: bool,
    /// The text is a sentence of this GBNF grammar (llama.cpp's `--grammar`; the start rule is `root`).
    #[arg(long, group = "constraint")]
    pub grammar: Option<String>,
    /// The GBNF grammar of --grammar, read from a file (llama.cpp's `--grammar-file`).
    #[arg(long, group = "constraint", value_name = "FILE")]
    pub grammar_file: Option<PathBuf>,
    /// The text is one JSON value, an instance of this JSON Schema (llama.cpp's `--json-schema`; `{}`: any JSON).
    #[arg(long, group = "constraint", value_name = "SCHEMA")]
    pub json_schema: Option<String>,
    /// The whole text matches this regular expression (Rust `regex` syntax).
    #[arg(long, group = "constraint", value_name = "PATTERN")]
    pub regex: Option<String>,
}

pub fn run(a: GenerateArgs) -> Result<()> {
    let format = text_format(&a)?;
    let max_new = a.max_new_tokens;
    // The KV cache is sized for the model's whole context (an engine's max_seq_len at most): the
    // prompt's length is known only after tokenizing, and the tokenizer comes with the backend. A
    // prompt given as ids (and not empty) is known now: prompt + new tokens, within the context.
    let known = a.prompt_ids.as_ref().filter(|ids| !ids.is_empty()).map(|ids| ids.len().saturating_add(max_new));
    let mut r = a
        .model
        .open(1, |c: &LlamaConfig| known.map_or(c.max_position_embeddings, |n| n.min(c.max_position_embeddings)))?;
    let tok = r.tokenizer.as_ref();
    let prompt_ids: Vec<u32> = match (&a.prompt, &a.prompt_ids) {
        (Some(p), _) => {
            if p.is_empty() {
                bail!("the prompt is empty");
            }
            let t = need_tokenizer(&r, "--prompt", "give --prompt-ids for presets")?;
            if a.chat {
                let mut msgs = Vec::new();
                if let Some(s) = &a.system {
                    msgs.push(ChatMessage::system(s.clone()));
                }
                msgs.push(ChatMessage::user(p.clone()));
                let template = ChatTemplate::from_model(t)?;
                if template.is_fallback() {
                    crate::util::errln!("{} has no chat template; using ChatML", r.label);
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
    let need = prompt_ids.len().saturating_add(max_new);
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
    let constraint = match format {
        Some((flag, f)) => {
            let t = need_tokenizer(&r, flag, "a constraint is over the tokens' text")?;
            Some(f.over(std::sync::Arc::new(JsonVocab::from_tokenizer(t, cfg.vocab_size))))
        }
        None => None,
    };
    let mut stream = tok.filter(|_| !a.print_ids).map(|t| t.stream_decoder(true));
    let mut stdout = std::io::stdout().lock();
    let t0 = Instant::now();
    let mut first: Option<f64> = None;
    // The first failed write to stdout (`> /dev/full`): the text stops there and the run fails.
    let mut failed: Option<std::io::Error> = None;
    let prompts = std::slice::from_ref(&prompt_ids);
    let outs = generate_constrained(r.backend.as_mut(), prompts, &params, &stop, constraint.as_deref(), |_, id| {
        first.get_or_insert_with(|| t0.elapsed().as_secs_f64());
        if let (Some(s), None) = (stream.as_mut(), &failed) {
            if let Ok(text) = s.step(id) {
                if let Err(e) = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
                    failed = Some(e);
                }
            }
        }
    })?;
    let out = &outs[0];
    let mut finish = || -> std::io::Result<()> {
        if let Some(e) = failed.take() {
            return Err(e);
        }
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
        stdout.flush()
    };
    finish().context("writing to standard output")?;
    let total = t0.elapsed().as_secs_f64();
    let ttft = first.unwrap_or(total);
    let n = out.tokens.len();
    let decode_rate = if n > 1 { (n - 1) as f64 / (total - ttft).max(1e-9) } else { 0.0 };
    crate::util::errln!(
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

/// The format of --grammar / --grammar-file / --json-schema / --regex, with its flag's name (None: no flag).
fn text_format(a: &GenerateArgs) -> Result<Option<(&'static str, TextFormat)>> {
    let (flag, kind, text) = match (&a.grammar, &a.grammar_file, &a.json_schema, &a.regex) {
        (Some(g), ..) => ("--grammar", FormatKind::Grammar, g.clone()),
        (_, Some(f), ..) => ("--grammar-file", FormatKind::Grammar, {
            std::fs::read_to_string(f).with_context(|| format!("--grammar-file: reading {}", f.display()))?
        }),
        (_, _, Some(s), _) => ("--json-schema", FormatKind::JsonSchema, s.clone()),
        (.., Some(p)) => ("--regex", FormatKind::Regex, p.clone()),
        _ => return Ok(None),
    };
    let format = TextFormat::compile(kind, &text).map_err(|e| anyhow::anyhow!("{flag} {e}"))?;
    Ok(Some((flag, format)))
}
