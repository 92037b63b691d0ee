//! `trtforge agree`: greedy-token agreement of an engine with a reference engine (ONNX Runtime by
//! default; `--backend cpu` runs what ONNX cannot express, e.g. dynamic KV scales).
use crate::backend::BackendKind;
use crate::engine_dir::Manifest;
use crate::model::tokenizer::Tokenizer;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct AgreeArgs {
    /// Engine directory to check.
    #[arg(long)]
    pub engine_dir: PathBuf,
    /// Reference engine directory (same model, e.g. its fp32 conversion).
    #[arg(long)]
    pub reference_dir: PathBuf,
    /// Prompt text (repeatable).
    #[arg(long = "prompt", required = true)]
    pub prompts: Vec<String>,
    #[arg(long, default_value_t = 128, value_parser = super::values::tokens1, allow_negative_numbers = true)]
    pub max_new_tokens: usize,
    /// Backend that runs the candidate (cpu runs what ONNX cannot express, e.g. dynamic KV scales).
    #[arg(long, value_enum, default_value_t = BackendKind::Ort)]
    pub backend: BackendKind,
    /// Backend that runs the reference.
    #[arg(long, value_enum, default_value_t = BackendKind::Ort)]
    pub reference_backend: BackendKind,
    /// Print a JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: AgreeArgs) -> Result<()> {
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
    let mut r = crate::backend::open_engine_dir(&a.reference_dir, a.reference_backend, 1, need)?;
    let mut c = crate::backend::open_engine_dir(&a.engine_dir, a.backend, 1, need)?;
    for (what, b) in [("reference", &r), ("candidate", &c)] {
        for n in b.notes() {
            crate::util::errln!("note ({what}): {n}");
        }
    }
    let rep = crate::eval::agreement::greedy_agreement(r.as_mut(), c.as_mut(), &prompts, &a.prompts, a.max_new_tokens)?;
    if a.json {
        outln!("{}", serde_json::to_string(&rep)?)?;
    } else {
        for p in &rep.prompts {
            outln!(
                "{:?}: teacher-forced {}/{}, first divergence at {}",
                p.prompt,
                p.teacher_forced_matches,
                p.generated,
                p.first_divergence
            )?;
        }
        outln!(
            "teacher-forced agreement {:.2} %, mean first divergence {:.1} of {} tokens, {} of {} sequences identical",
            rep.teacher_forced_agreement * 100.0,
            rep.mean_first_divergence,
            rep.new_tokens,
            rep.identical_sequences,
            rep.prompts.len()
        )?;
    }
    Ok(())
}
