//! Greedy-token agreement of a (quantized) engine with a reference engine, for the quality report.
//!
//! Per prompt the reference decodes `n` tokens greedily (no stop on EOS, so every prompt yields `n`).
//! Two numbers come out:
//! - teacher-forced agreement: the candidate reads the prompt + the reference's tokens in one pass and
//!   its argmax is compared with the reference's next token at each of the `n` positions (robust: one
//!   early difference does not decide the rest);
//! - first divergence: the candidate decodes on its own; how many tokens match before the first
//!   difference (`n` when the sequences are identical).
use crate::backend::{Backend, Logits, SeqChunk};
use crate::error::{Error, Result};
use crate::generate::{argmax, generate_batch, SamplingParams, StopCriteria};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct PromptAgreement {
    pub prompt: String,
    pub prompt_tokens: usize,
    pub generated: usize,
    pub teacher_forced_matches: usize,
    pub first_divergence: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgreementReport {
    pub new_tokens: usize,
    /// Matches / positions over all prompts.
    pub teacher_forced_agreement: f64,
    pub mean_first_divergence: f64,
    pub identical_sequences: usize,
    pub prompts: Vec<PromptAgreement>,
}

fn greedy(backend: &mut dyn Backend, prompt: &[u32], n: usize) -> Result<Vec<u32>> {
    let params = SamplingParams { greedy: true, max_new_tokens: n, ..Default::default() };
    let stop = StopCriteria { eos: &[], stop_strings: &[], detok: None };
    let out = generate_batch(backend, &[prompt.to_vec()], &params, &stop, |_, _| {})?;
    Ok(out.into_iter().next().map(|o| o.tokens).unwrap_or_default())
}

/// Compares `candidate` with `reference` on `prompts` (token ids; `labels` name them in the report).
pub fn greedy_agreement(
    reference: &mut dyn Backend,
    candidate: &mut dyn Backend,
    prompts: &[Vec<u32>],
    labels: &[String],
    n: usize,
) -> Result<AgreementReport> {
    if n == 0 || prompts.is_empty() {
        return Err(Error::Invalid("agreement needs at least one prompt and one new token".into()));
    }
    let mut out = Vec::with_capacity(prompts.len());
    for (i, p) in prompts.iter().enumerate() {
        let want = greedy(reference, p, n)?;
        let got = greedy(candidate, p, n)?;
        let first_divergence = want.iter().zip(&got).take_while(|(a, b)| a == b).count();
        let mut seq = p.clone();
        seq.extend_from_slice(&want[..want.len() - 1]);
        candidate.reset(0);
        let logits = candidate.forward(&[SeqChunk { slot: 0, tokens: &seq }], Logits::All)?;
        candidate.reset(0);
        let matches = want.iter().enumerate().filter(|&(j, &t)| argmax(logits.row(p.len() - 1 + j)) == t).count();
        out.push(PromptAgreement {
            prompt: labels.get(i).cloned().unwrap_or_default(),
            prompt_tokens: p.len(),
            generated: want.len(),
            teacher_forced_matches: matches,
            first_divergence,
        });
    }
    let total: usize = out.iter().map(|p| p.generated).sum();
    let matches: usize = out.iter().map(|p| p.teacher_forced_matches).sum();
    Ok(AgreementReport {
        new_tokens: n,
        teacher_forced_agreement: matches as f64 / total.max(1) as f64,
        mean_first_divergence: out.iter().map(|p| p.first_divergence as f64).sum::<f64>() / out.len() as f64,
        identical_sequences: out.iter().filter(|p| p.first_divergence == p.generated).count(),
        prompts: out,
    })
}
