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

pub fn argmax(x: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in x.iter().enumerate() {
        if *v > x[best] {
            best = i;
        }
    }
    best as u32
}
