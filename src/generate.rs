//! Token generation over any [`Backend`]: greedy or sampled, batched, streaming.
use crate::backend::json_mode::TokenConstraint;
pub use crate::backend::sampling::{argmax, Sampler, SamplingParams};
pub use crate::backend::text_format::{FormatKind, TextFormat};
use crate::backend::{Backend, Logits, LogitsOut, SeqChunk};
use crate::error::{Error, Result};

/// Why a sequence stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Eos,
    StopString,
    MaxTokens,
}

#[derive(Debug, Clone)]
pub struct GenOutput {
    pub tokens: Vec<u32>, // generated ids, stop token excluded
    pub stop: StopReason,
}

/// Text of the ids generated so far (for stop strings).
pub type Detokenize<'a> = &'a dyn Fn(&[u32]) -> String;

/// Stop conditions shared by all sequences of a batch.
pub struct StopCriteria<'a> {
    pub eos: &'a [u32],
    /// Stop strings, checked against the text decoded so far by `detok`.
    pub stop_strings: &'a [String],
    pub detok: Option<Detokenize<'a>>,
}

/// Generates continuations of several prompts at once: one batched prefill, then one batched
/// decode step per token. `on_token(seq, id)` streams each new token as it is chosen.
pub fn generate_batch(
    backend: &mut dyn Backend,
    prompts: &[Vec<u32>],
    params: &SamplingParams,
    stop: &StopCriteria,
    on_token: impl FnMut(usize, u32),
) -> Result<Vec<GenOutput>> {
    generate_constrained(backend, prompts, params, stop, None, on_token)
}

/// [`generate_batch`] with each sequence's tokens chosen under `constraint`'s mask (a grammar, a JSON schema, a
/// pattern: the text so far decides which tokens may follow, `stop.eos` only where the text may end).
pub fn generate_constrained(
    backend: &mut dyn Backend,
    prompts: &[Vec<u32>],
    params: &SamplingParams,
    stop: &StopCriteria,
    constraint: Option<&dyn TokenConstraint>,
    mut on_token: impl FnMut(usize, u32),
) -> Result<Vec<GenOutput>> {
    params.validate()?;
    if prompts.is_empty() {
        return Ok(Vec::new());
    }
    if prompts.len() > backend.max_batch() {
        return Err(Error::Invalid(format!(
            "{} prompts but the backend holds {} sequences",
            prompts.len(),
            backend.max_batch()
        )));
    }
    for (i, p) in prompts.iter().enumerate() {
        if p.is_empty() {
            return Err(Error::Invalid(format!("prompt {i} is empty (no tokens)")));
        }
        // Checked: a huge max_new_tokens must not wrap around and pass.
        let need = p.len().saturating_add(params.max_new_tokens);
        if need > backend.max_seq() {
            return Err(Error::Invalid(format!(
                "prompt {i} has {} tokens; with {} new tokens that is {need}, more than the {} the engine holds (model context {})",
                p.len(),
                params.max_new_tokens,
                backend.max_seq(),
                backend.config().max_position_embeddings
            )));
        }
    }
    for slot in 0..prompts.len() {
        backend.reset(slot);
    }
    let mut samplers: Vec<Sampler> = (0..prompts.len())
        .map(|i| Sampler::new(SamplingParams { seed: params.seed.wrapping_add(i as u64), ..params.clone() }))
        .collect();
    let mut contexts: Vec<Vec<u32>> = prompts.to_vec();
    let mut outs: Vec<Option<GenOutput>> = vec![None; prompts.len()];
    let mut generated: Vec<Vec<u32>> = vec![Vec::new(); prompts.len()];
    if params.max_new_tokens == 0 {
        return Ok(generated.into_iter().map(|tokens| GenOutput { tokens, stop: StopReason::MaxTokens }).collect());
    }
    let chunks: Vec<SeqChunk> = prompts.iter().enumerate().map(|(slot, p)| SeqChunk { slot, tokens: p }).collect();
    // Plain greedy decoding lets the backend pick the argmax itself (on the GPU for `cuda`).
    let device_greedy = params.is_greedy() && params.repetition_penalty == 1.0 && constraint.is_none();
    let mut masked: Vec<f32> = Vec::new();
    let run = |backend: &mut dyn Backend, chunks: &[SeqChunk]| -> Result<(Option<LogitsOut>, Vec<u32>)> {
        if device_greedy {
            Ok((None, backend.forward_greedy(chunks)?))
        } else {
            let l = backend.forward(chunks, Logits::Last)?;
            crate::backend::sampling::check_finite(backend.name(), &l.data)?;
            Ok((Some(l), Vec::new()))
        }
    };
    let (mut logits, mut ids) = run(backend, &chunks)?;
    let mut active: Vec<usize> = (0..prompts.len()).collect();
    loop {
        let mut next_tokens = Vec::with_capacity(active.len());
        for (row, &seq) in active.iter().enumerate() {
            let tok = match (&logits, constraint) {
                (Some(l), Some(c)) => {
                    masked.clear();
                    masked.extend_from_slice(l.row(row));
                    c.mask(&generated[seq], stop.eos, &mut masked);
                    samplers[seq].sample(&masked, &contexts[seq])
                }
                (Some(l), None) => samplers[seq].sample(l.row(row), &contexts[seq]),
                (None, _) => ids[row],
            };
            let reason = if stop.eos.contains(&tok) {
                Some(StopReason::Eos)
            } else {
                generated[seq].push(tok);
                contexts[seq].push(tok);
                on_token(seq, tok);
                if generated[seq].len() >= params.max_new_tokens {
                    Some(StopReason::MaxTokens)
                } else if let (false, Some(d)) = (stop.stop_strings.is_empty(), stop.detok) {
                    let text = d(&generated[seq]);
                    stop.stop_strings.iter().any(|s| text.contains(s.as_str())).then_some(StopReason::StopString)
                } else {
                    None
                }
            };
            match reason {
                Some(r) => outs[seq] = Some(GenOutput { tokens: generated[seq].clone(), stop: r }),
                None => next_tokens.push((seq, tok)),
            }
        }
        if next_tokens.is_empty() {
            break;
        }
        let toks: Vec<[u32; 1]> = next_tokens.iter().map(|&(_, t)| [t]).collect();
        let chunks: Vec<SeqChunk> =
            next_tokens.iter().zip(&toks).map(|(&(slot, _), t)| SeqChunk { slot, tokens: t }).collect();
        (logits, ids) = run(backend, &chunks)?;
        active = next_tokens.iter().map(|&(s, _)| s).collect();
    }
    Ok(outs.into_iter().map(|o| o.unwrap_or(GenOutput { tokens: Vec::new(), stop: StopReason::MaxTokens })).collect())
}
