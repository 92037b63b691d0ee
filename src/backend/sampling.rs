//! Choosing the next token from logits: argmax and HF-style sampling. Lives with the backends so a
//! backend can choose on its device (`Backend::forward_greedy`) and generation, evaluation and
//! serving share one definition.
use crate::error::{Error, Result};
use crate::util::SplitMix64;

/// Decoding settings. `temperature == 0` or `greedy` means argmax.
#[derive(Debug, Clone)]
pub struct SamplingParams {
    pub greedy: bool,
    pub temperature: f32,
    pub top_k: usize,            // 0 = off
    pub top_p: f32,              // 1.0 = off
    pub repetition_penalty: f32, // 1.0 = off
    pub seed: u64,
    pub max_new_tokens: usize,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            greedy: false,
            temperature: 0.7,
            top_k: 50,
            top_p: 0.9,
            repetition_penalty: 1.0,
            seed: 0,
            max_new_tokens: 128,
        }
    }
}

impl SamplingParams {
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(Error::Invalid(format!("temperature must be >= 0, got {}", self.temperature)));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(Error::Invalid(format!("top_p must be in (0, 1], got {}", self.top_p)));
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return Err(Error::Invalid(format!("repetition_penalty must be > 0, got {}", self.repetition_penalty)));
        }
        Ok(())
    }
    /// Argmax decoding: `greedy` or temperature 0.
    pub fn is_greedy(&self) -> bool {
        self.greedy || self.temperature == 0.0
    }
}

/// Applies the logits processors in HF's order (repetition penalty, temperature, top-k, top-p)
/// and picks a token.
pub struct Sampler {
    params: SamplingParams,
    rng: SplitMix64,
    scratch: Vec<(f32, u32)>, // (vocab)
}

impl Sampler {
    pub fn new(params: SamplingParams) -> Self {
        let rng = SplitMix64(params.seed);
        Sampler { params, rng, scratch: Vec::new() }
    }

    pub fn sample(&mut self, logits: &[f32], context: &[u32]) -> u32 {
        let p = &self.params;
        let mut penalized;
        let logits = if p.repetition_penalty != 1.0 {
            penalized = logits.to_vec();
            for &t in context {
                if let Some(l) = penalized.get_mut(t as usize) {
                    *l = if *l > 0.0 { *l / p.repetition_penalty } else { *l * p.repetition_penalty };
                }
            }
            &penalized[..]
        } else {
            logits
        };
        if p.is_greedy() {
            return argmax(logits);
        }
        let draw = self.rng.next_f32();
        sample_logits(logits, p.temperature, p.top_k, p.top_p, draw, &mut self.scratch)
    }
}

/// Temperature, top-k (0 = off), top-p (1 = off), then the token where `draw` (uniform in [0, 1))
/// falls in the kept probabilities: the one sampling routine of generation and serving. Ties are
/// broken by the lower token id, so the choice depends only on the logits and the draw.
pub fn sample_logits(
    logits: &[f32],
    temperature: f32,
    top_k: usize,
    top_p: f32,
    draw: f32,
    scratch: &mut Vec<(f32, u32)>,
) -> u32 {
    scratch.clear();
    scratch.extend(logits.iter().enumerate().map(|(i, &l)| (l / temperature, i as u32)));
    let by_logit = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if top_k > 0 && top_k < scratch.len() {
        scratch.select_nth_unstable_by(top_k - 1, by_logit);
        scratch.truncate(top_k);
    }
    scratch.sort_unstable_by(by_logit);
    let mx = scratch[0].0;
    let mut total = 0.0f64;
    for e in scratch.iter_mut() {
        e.0 = (e.0 - mx).exp();
        total += e.0 as f64;
    }
    if top_p < 1.0 {
        let mut cum = 0.0f64;
        let mut keep = scratch.len();
        for (i, e) in scratch.iter().enumerate() {
            cum += e.0 as f64 / total;
            if cum >= top_p as f64 {
                keep = i + 1;
                break;
            }
        }
        scratch.truncate(keep);
        total = scratch.iter().map(|e| e.0 as f64).sum();
    }
    let r = draw as f64 * total;
    let mut cum = 0.0f64;
    for e in scratch.iter() {
        cum += e.0 as f64;
        if r < cum {
            return e.1;
        }
    }
    scratch[scratch.len() - 1].1
}

/// Index of the largest value, the first on ties.
/// NaN logits would be sampled as token 0 forever: an error instead of silent garbage.
pub fn check_finite(backend: &str, logits: &[f32]) -> Result<()> {
    if logits.iter().any(|x| x.is_nan()) {
        return Err(Error::Invalid(format!(
            "the {backend} backend produced NaN logits (NaN or infinite weights or activations); nothing is generated"
        )));
    }
    Ok(())
}

/// A chosen token's log-probability and the most likely tokens' (id, log-probability), most likely
/// first; all under the model's own distribution: the log-softmax of the raw logits, before
/// temperature, top-k or top-p (what vLLM and OpenAI report by default).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprobs {
    pub token: u32,
    pub logprob: f32,
    pub top: Vec<(u32, f32)>,
}

/// [`TokenLogprobs`] of `token` and the `top` most likely tokens (ties: the lower id first) of one
/// row of logits. The log-sum-exp is accumulated in f64.
pub fn token_logprobs(logits: &[f32], token: u32, top: usize) -> TokenLogprobs {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = max + logits.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln();
    let lp = |x: f32| (x as f64 - lse) as f32;
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(top + 1);
    if top > 0 {
        // Keep the `top` largest (value desc, id asc) by insertion: top is at most a few dozen.
        for (i, &x) in logits.iter().enumerate() {
            if best.len() == top && best.last().is_some_and(|&(_, y)| x <= y) {
                continue;
            }
            let at = best.partition_point(|&(_, y)| y >= x);
            best.insert(at, (i as u32, x));
            best.truncate(top);
        }
    }
    TokenLogprobs {
        token,
        logprob: logits.get(token as usize).map_or(f32::NEG_INFINITY, |&x| lp(x)),
        top: best.into_iter().map(|(i, x)| (i, lp(x))).collect(),
    }
}

/// The log-probabilities of a step's sampled rows, where asked: row `r` of `logits` (rows of `vocab`) at its
/// chosen token `ids[r]`, with `asks[r]` alternatives (None: that row did not ask). Rows after the last
/// that asks need no logits or id.
pub fn rows_logprobs(
    logits: &[f32],
    vocab: usize,
    ids: &[u32],
    asks: impl Iterator<Item = Option<u8>>,
) -> Vec<Option<TokenLogprobs>> {
    asks.enumerate()
        .map(|(r, k)| k.map(|k| token_logprobs(&logits[r * vocab..(r + 1) * vocab], ids[r], k as usize)))
        .collect()
}

pub fn argmax(x: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in x.iter().enumerate() {
        if *v > x[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_logprobs_rank_and_normalise() {
        let logits = [1.0f32, 3.0, 3.0, -2.0, 0.5, f32::NEG_INFINITY];
        let l = token_logprobs(&logits, 4, 3);
        // The probabilities of every token sum to one: exp(logprob(i)) over i.
        let all: f64 = (0..logits.len() as u32).map(|i| (token_logprobs(&logits, i, 0).logprob as f64).exp()).sum();
        assert!((all - 1.0).abs() < 1e-6, "{all}");
        // The most likely first, ties by the lower id; the chosen token's own value besides.
        assert_eq!(l.top.iter().map(|t| t.0).collect::<Vec<_>>(), [1, 2, 0]);
        assert_eq!(l.top[0].1, l.top[1].1);
        assert!((l.logprob - (l.top[2].1 - 0.5)).abs() < 1e-6, "{l:?}");
        assert_eq!(token_logprobs(&logits, 5, 0).logprob, f32::NEG_INFINITY);
        assert_eq!(token_logprobs(&logits, 1, 9).top.len(), 6);
    }
}
