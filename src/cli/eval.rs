//! `trtforge eval`: perplexity of a model on a text file.
use super::{need_tokenizer, ModelArgs};
use crate::backend::ort::QuantKernels;
use crate::eval;
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// UTF-8 text file to score.
    #[arg(long)]
    pub text: PathBuf,
    /// Window length in tokens.
    #[arg(long, default_value_t = 512, value_parser = super::values::window, allow_negative_numbers = true)]
    pub ctx: usize,
    /// Score at most this many windows (default: all).
    #[arg(long, value_parser = super::values::repeats1, allow_negative_numbers = true)]
    pub windows: Option<usize>,
    /// Print a JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: EvalArgs) -> Result<()> {
    let ctx = a.ctx;
    // Perplexity is the exported model's: ONNX Runtime runs quantized weights as written (`exact`)
    // unless TRTFORGE_ORT_QUANT_KERNELS says otherwise. Its fused MatMulNBits kernels, the speed
    // default of generate / bench / serve, round the activations to int8 blocks (+0.1–0.3 % on
    // SmolLM2: docs/quantization.md); eval measures what the engine dir holds.
    let kernels = QuantKernels::from_env()?.unwrap_or(QuantKernels::Exact);
    let mut r = a.model.open_with(1, |_| ctx, Some(kernels))?;
    let tok = need_tokenizer(&r, "eval", "it tokenizes --text: give a GGUF file or an HF model directory")?;
    let text = crate::util::read_text(&a.text, None)?;
    if text.trim().is_empty() {
        bail!("{} is empty", a.text.display());
    }
    // With a window count only the tokens those windows take are needed: encode no more of the text.
    let ids = match a.windows {
        Some(w) => tok.encode_prefix(&text, false, w.saturating_mul(a.ctx))?,
        None => tok.encode(&text, false)?,
    };
    let t0 = Instant::now();
    let rep = eval::perplexity(r.backend.as_mut(), &ids, a.ctx, a.windows, |done, total| {
        crate::util::errln!("window {done}/{total}  ({:.1} s)", t0.elapsed().as_secs_f64());
    })?;
    if a.json {
        outln!("{}", serde_json::to_string(&rep)?)?;
    } else {
        outln!("perplexity {:.4} over {} tokens ({} windows of {})", rep.perplexity, rep.tokens, rep.windows, rep.ctx)?;
    }
    Ok(())
}
