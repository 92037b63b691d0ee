//! Quality of a model or engine: perplexity (here), greedy-token agreement of two engines
//! ([`agreement`]) and the CUDA engine's checks against the CPU reference ([`cuda_check`]).
//!
//! Perplexity, the one definition used by `trtforge eval`, bench and the quality reports:
//! The whole text is tokenized without special tokens and cut into consecutive, non-overlapping
//! windows of `ctx` tokens (at most `max_windows`). Each window runs from an empty cache and the mean
//! negative log-likelihood of positions 1..ctx-1 is averaged over all windows.
pub mod agreement;
pub mod cuda_check;
pub mod cuda_paged_check;

use crate::backend::{Backend, Logits, SeqChunk};
use crate::error::{Error, Result};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct PerplexityReport {
    pub perplexity: f64,
    /// Tokens scored (windows × (ctx − 1)).
    pub tokens: usize,
    pub windows: usize,
    pub ctx: usize,
    pub nll_per_window: Vec<f64>,
}

/// Computes perplexity over `ids` using `backend` slot 0.
pub fn perplexity(
    backend: &mut dyn Backend,
    ids: &[u32],
    ctx: usize,
    max_windows: Option<usize>,
    mut progress: impl FnMut(usize, usize),
) -> Result<PerplexityReport> {
    if ctx < 2 {
        return Err(Error::Invalid(format!("ctx must be at least 2, got {ctx}")));
    }
    if ctx > backend.max_seq() {
        return Err(Error::Invalid(format!(
            "ctx {ctx} is longer than the engine holds ({} tokens; model context {})",
            backend.max_seq(),
            backend.config().max_position_embeddings
        )));
    }
    if max_windows == Some(0) {
        return Err(Error::Invalid("the number of windows must be at least 1 (leave it out to score all)".into()));
    }
    let available = ids.len() / ctx;
    let windows = max_windows.map_or(available, |n| n.min(available));
    if windows == 0 {
        return Err(Error::Invalid(format!("the text has {} tokens, fewer than one window of {ctx}", ids.len())));
    }
    let mut nll_per_window = Vec::with_capacity(windows);
    for w in 0..windows {
        let win = &ids[w * ctx..(w + 1) * ctx];
        backend.reset(0);
        let logits = backend.forward(&[SeqChunk { slot: 0, tokens: win }], Logits::All)?;
        let mut nll = 0.0f64;
        for i in 0..ctx - 1 {
            nll += -log_softmax_at(logits.row(i), win[i + 1] as usize);
        }
        let mean = nll / (ctx - 1) as f64;
        // NaN or infinite logits (broken weights, an overflowing fp16 path) make a number that
        // looks like a result; it is an error instead.
        if !mean.is_finite() {
            backend.reset(0);
            return Err(Error::Invalid(format!(
                "window {} of {windows}: the negative log-likelihood is {mean} — the {} backend produced \
non-finite logits (NaN or infinite weights or activations); no perplexity is reported",
                w + 1,
                backend.name()
            )));
        }
        nll_per_window.push(mean);
        progress(w + 1, windows);
    }
    backend.reset(0);
    let mean = nll_per_window.iter().sum::<f64>() / windows as f64;
    Ok(PerplexityReport { perplexity: mean.exp(), tokens: windows * (ctx - 1), windows, ctx, nll_per_window })
}

/// log p(target) under softmax(logits), in f64.
pub fn log_softmax_at(logits: &[f32], target: usize) -> f64 {
    let mx = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let lse = logits.iter().map(|&l| (l as f64 - mx).exp()).sum::<f64>().ln() + mx;
    logits[target] as f64 - lse
}
