//! Paged KV cache: the backend side of in-flight batching (`trtforge serve`).
//!
//! The KV cache is a pool of fixed-size blocks shared by all sequences; a sequence's block table
//! says which block holds each run of [`BLOCK_SIZE`] positions (position `p` lives in block
//! `table[p / 16]`, row `p % 16`). Per layer there are separate K and V pools in NHD layout:
//! `k_pool[layer]: [num_blocks][BLOCK_SIZE][n_kv_heads][head_dim]` (the same for V). Block tables
//! are `i32` so a GPU implementation can copy them as `[num_seqs][max_blocks_per_seq]` row-major
//! (unused entries -1). Who owns which block is the scheduler's business (src/serve/); a backend
//! only reads and writes the blocks it is told to.
//!
//! One [`PagedBackend::step`] runs any mix of prefill chunks and decode tokens and returns a token
//! for each sequence that asks for one. Sampling happens in the backend, so a GPU can take the
//! argmax on the device and never copy logits.
//!
//! [`CpuPagedBackend`] is the f32 reference. Its per-token arithmetic does not depend on the
//! batch: every linear-layer output is one fixed-order dot product, and in the attention every
//! score is one and a row's softmax and its sum over the cached blocks run in position order,
//! so a sequence gets bit-identical logits alone, among 63 others, or with its
//! prompt split into any chunks (which is also what makes shared prefix blocks and
//! recompute-after-preemption exact).
use super::cpu::{
    add_rows, embed_rows, rms_norm_rows, rope_rows, select_rows, softmax_prefix, swiglu_rows, Act, CpuQuant,
};
use super::json_mode::TokenConstraint;
use super::sampling::{argmax, rows_logprobs, sample_logits, token_logprobs, TokenLogprobs};
use crate::error::{Error, Result};
use crate::model::graph::{forward, LlamaOps};
use crate::model::{LlamaConfig, ModelWeights, Param, Tensor};
use crate::quant::fp8;
use crate::quant::kv::KvScaleMode;
use crate::util::SplitMix64;
use ndarray::{linalg::general_mat_mul, ArrayView2, ArrayViewMut2};
use rayon::prelude::*;
use std::sync::Arc;

/// Tokens per KV block.
pub const BLOCK_SIZE: usize = 16;

/// How a sequence's next token is chosen. `temperature == 0` is greedy (argmax, first index on
/// ties); otherwise HF's order: temperature, top-k, top-p, then one uniform draw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenSampling {
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = off).
    pub top_k: usize,
    /// Nucleus threshold (1 = off).
    pub top_p: f32,
    /// The draw for the token at position `p` comes from `seed` and `p` alone, so a sampled
    /// sequence does not depend on batching or on being preempted and recomputed.
    pub seed: u64,
    /// `Some(n)`: also return the chosen token's log-probability and the `n` most likely tokens'
    /// (at most [`MAX_TOP_LOGPROBS`]; [`PagedBackend::take_logprobs`]).
    pub logprobs: Option<u8>,
}

/// Most alternatives a token's log-probabilities list (OpenAI's `top_logprobs` limit).
pub const MAX_TOP_LOGPROBS: usize = 20;

impl TokenSampling {
    pub const GREEDY: TokenSampling = TokenSampling { temperature: 0.0, top_k: 0, top_p: 1.0, seed: 0, logprobs: None };
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }
}

/// One sequence's share of a step.
#[derive(Debug, Clone, Copy)]
pub struct PagedSeq<'a> {
    /// New tokens: a prefill chunk or one decode token.
    pub tokens: &'a [u32],
    /// Position of `tokens[0]` (= tokens already in this sequence's cache).
    pub start: usize,
    /// Blocks covering positions `0 .. start + tokens.len()` (more entries are allowed; -1 unused).
    pub block_table: &'a [i32],
    /// `Some` when the step should return a token chosen from the last position's logits.
    pub sample: Option<TokenSampling>,
    /// Prompt log-probabilities (serve's `echo` with `logprobs`): rows `from_row ..` of this chunk score
    /// the tokens that follow them ([`PagedBackend::take_prompt_logprobs`]).
    pub score: Option<PromptScore<'a>>,
    /// What the request changes in its logits before its token is sampled ([`Shaping`]).
    pub shaping: Option<Shaping<'a>>,
}

impl<'a> PagedSeq<'a> {
    /// A plain chunk: no prompt scoring, no logit changes.
    pub fn new(tokens: &'a [u32], start: usize, block_table: &'a [i32], sample: Option<TokenSampling>) -> Self {
        PagedSeq { tokens, start, block_table, sample, score: None, shaping: None }
    }
}

/// A request's logit changes (serve's `logit_bias`, `presence_penalty`, `frequency_penalty`, vLLM's
/// `repetition_penalty`, `min_tokens` and `min_p`, `response_format` JSON mode), owned by its sequence.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogitShaping {
    pub bias: Vec<(u32, f32)>,
    pub presence: f32,
    pub frequency: f32,
    /// vLLM's (and HF's) repetition penalty over the prompt's and the generated tokens: a seen token's
    /// logit divided by it where positive, multiplied where negative (None: off).
    pub repetition: Option<f32>,
    /// The sequence's end tokens stay masked until this many tokens are generated (vLLM's `min_tokens`).
    pub min_tokens: usize,
    /// The sequence's end tokens (the model's stop tokens and the request's; the engine fills them in): what
    /// `min_tokens` masks and what a constraint allows once its text may end.
    pub end: Vec<u32>,
    /// vLLM's `min_p` at `temperature` (0: off): tokens whose probability after temperature is below
    /// `min_p` × the most likely one's are masked.
    pub min_p: f32,
    pub temperature: f32,
    pub json: Option<JsonShaping>,
}

/// JSON mode / structured output (and `guided_choice`): the generated text stays a prefix of what the
/// constraint allows (any object, a schema's instance, one of the strings), and one of the sequence's end
/// tokens ends it once it may (see [`super::json_mode`]).
#[derive(Debug, Clone)]
pub struct JsonShaping {
    pub constraint: Arc<dyn TokenConstraint>,
}

impl PartialEq for JsonShaping {
    fn eq(&self, o: &Self) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.constraint), Arc::as_ptr(&o.constraint))
    }
}

impl LogitShaping {
    /// The changes for the next token of a sequence of `prompt` that has generated `generated` so far.
    pub fn view<'a>(&'a self, prompt: &'a [u32], generated: &'a [u32]) -> Shaping<'a> {
        Shaping { shaping: self, prompt, generated }
    }
}

/// [`LogitShaping`] at one step, in vLLM's order: the bias; the repetition penalty (HF's formula over the
/// prompt's and the generated tokens), then OpenAI's `logit[t] −= presence · [count(t) > 0] + frequency ·
/// count(t)` with counts over the generated tokens; the end tokens masked before `min_tokens`; the JSON
/// mask; `min_p` last (it is a sampling filter, after temperature). Log-probabilities stay those of the
/// model's own logits.
#[derive(Debug, Clone, Copy)]
pub struct Shaping<'a> {
    pub shaping: &'a LogitShaping,
    pub prompt: &'a [u32],
    pub generated: &'a [u32],
}

impl Shaping<'_> {
    /// Applies the changes to one row of logits (ids outside the row are skipped).
    pub fn apply(&self, logits: &mut [f32]) {
        let s = self.shaping;
        for &(t, b) in &s.bias {
            if let Some(l) = logits.get_mut(t as usize) {
                *l += b;
            }
        }
        if let Some(r) = s.repetition {
            let mut seen = vec![false; logits.len()];
            for &t in self.prompt.iter().chain(self.generated) {
                if let Some(l) = logits.get_mut(t as usize) {
                    if !std::mem::replace(&mut seen[t as usize], true) {
                        *l = if *l > 0.0 { *l / r } else { *l * r };
                    }
                }
            }
        }
        if s.presence != 0.0 || s.frequency != 0.0 {
            let mut counts: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
            for &t in self.generated {
                *counts.entry(t).or_default() += 1;
            }
            for (t, c) in counts {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l -= s.presence + s.frequency * c as f32;
                }
            }
        }
        if self.generated.len() < s.min_tokens {
            for &t in &s.end {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l = f32::NEG_INFINITY;
                }
            }
        }
        if let Some(j) = &s.json {
            j.constraint.mask(self.generated, &s.end, logits);
        }
        if s.min_p > 0.0 && s.temperature > 0.0 {
            // p_t >= min_p · p_max  <=>  l_t >= l_max + T · ln(min_p)
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let floor = max + s.temperature * s.min_p.ln();
            for l in logits.iter_mut() {
                if *l < floor {
                    *l = f32::NEG_INFINITY;
                }
            }
        }
    }
}

/// Which rows of a chunk score which tokens: row `from_row + i` (position `start + from_row + i`) gets the
/// log-probability of `targets[i]`, the token at the next position, and the `top` most likely tokens'.
#[derive(Debug, Clone, Copy)]
pub struct PromptScore<'a> {
    pub from_row: usize,
    pub targets: &'a [u32],
    pub top: u8,
}

/// One sequence of a decode step queued behind the step in flight ([`PagedBackend::launch_next`]):
/// its input token is the one that step samples, which the backend already holds.
#[derive(Debug, Clone, Copy)]
pub struct NextSeq<'a> {
    /// Position of the new token (the in-flight step's position + 1).
    pub start: usize,
    /// Blocks covering positions `0 ..= start`.
    pub block_table: &'a [i32],
    pub sample: TokenSampling,
}

/// A Llama executor over a paged KV cache of `num_blocks` blocks, allocated up front.
pub trait PagedBackend: Send {
    /// Short name for logs and metrics: "cpu", "cuda".
    fn name(&self) -> &'static str;
    fn config(&self) -> &LlamaConfig;
    fn num_blocks(&self) -> usize;
    /// Longest sequence (prompt + output) the backend can hold: the model context, capped by the
    /// pool (one sequence may use every block) and the backend's own tables.
    fn max_model_len(&self) -> usize;
    /// Writes each sequence's new tokens' K/V into its blocks, attends, and returns one token per
    /// sequence with `sample.is_some()`, in order.
    fn step(&mut self, seqs: &[PagedSeq]) -> Result<Vec<u32>>;
    /// Bytes of the K and V pools together.
    fn kv_cache_bytes(&self) -> u64;
    /// Starts a step: `Some(tokens)` when it ran to completion (the default: [`step`](Self::step)),
    /// `None` when its tokens are still being computed — [`collect`](Self::collect) returns them,
    /// and must come before any other call. This lets the caller do host work (detokenizing,
    /// sending the previous step's tokens) while a GPU runs the step.
    fn launch(&mut self, seqs: &[PagedSeq]) -> Result<Option<Vec<u32>>> {
        self.step(seqs).map(Some)
    }
    /// The tokens of the oldest step [`launch`](Self::launch) (or `launch_next`) left in flight.
    fn collect(&mut self) -> Result<Vec<u32>> {
        Err(Error::Invalid("paged backend: no step in flight".into()))
    }
    /// Queues the decode step after the newest step in flight, before its tokens are known: the
    /// same sequences in the same order, one position further, each fed the token the step in
    /// flight samples for it (a GPU keeps it on the device). `Ok(false)` when the backend cannot
    /// (no such step in flight, another batch): the caller collects and plans as usual. After
    /// `Ok(true)` two steps are in flight and `collect` returns the older one's tokens first.
    fn launch_next(&mut self, _seqs: &[NextSeq]) -> Result<bool> {
        Ok(false)
    }
    /// Called once before the server takes requests: does what a fresh engine would otherwise do
    /// inside its first steps (the CUDA engine captures every decode graph bucket and meets every
    /// GEMM shape of its prefill buckets). Returns what it did, for the log.
    fn warm_up(&mut self) -> Result<Option<String>> {
        Ok(None)
    }
    /// Where the time of the steps since the last call went (TRTFORGE_SERVE_PROFILE), if the
    /// backend keeps track; resets its counters.
    fn take_profile(&mut self) -> Option<String> {
        None
    }
    /// The KV cache's element format ("f32", "int8 (dynamic)", ...) and its bytes per token (all
    /// layers, K and V, scales amortized) as a kernel stores it.
    fn kv_format(&self) -> (String, f64) {
        let c = self.config();
        ("f32".into(), (2 * c.num_hidden_layers * c.kv_dim() * 4) as f64)
    }
    /// Whether [`take_logprobs`](Self::take_logprobs) gives log-probabilities (the server refuses
    /// `logprobs` otherwise).
    fn supports_logprobs(&self) -> bool {
        false
    }
    /// Log-probabilities of the tokens the last `step`, `launch` (when it returned them) or `collect`
    /// returned, one entry per token: `Some` for the sequences whose sampling asked
    /// ([`TokenSampling::logprobs`]). Empty when none asked.
    fn take_logprobs(&mut self) -> Vec<Option<TokenLogprobs>> {
        Vec::new()
    }
    /// The prompt log-probabilities of the last `step` (or `launch` that returned its tokens): one list a
    /// sequence of the step, in order (empty for a sequence without [`PagedSeq::score`]); empty when no
    /// sequence had one. A backend that scores has [`supports_logprobs`](Self::supports_logprobs) and runs
    /// such steps to completion in `launch`.
    fn take_prompt_logprobs(&mut self) -> Vec<Vec<TokenLogprobs>> {
        Vec::new()
    }
    /// Whether the backend applies [`PagedSeq::shaping`] (the server refuses those parameters otherwise).
    fn supports_shaping(&self) -> bool {
        false
    }
}

/// Whether `kind` has a paged-KV implementation here; the error says what to use instead.
pub fn check_backend(kind: super::BackendKind) -> Result<()> {
    use super::BackendKind;
    match kind {
        BackendKind::Cpu | BackendKind::Cuda => Ok(()),
        k => Err(Error::Unsupported(format!(
            "the {} backend has fixed batch slots and no paged KV cache; serve with --backend cpu or cuda",
            k.name()
        ))),
    }
}

/// What a paged backend is opened with besides the weights.
#[derive(Debug, Clone)]
pub struct PagedOptions {
    /// Bytes of the K and V pools together.
    pub kv_cache_bytes: u64,
    /// Size the pool from the GPU's memory instead (`--gpu-memory-utilization`, CUDA only): see
    /// [`kv_bytes_for_fraction`]; with `kv_cache_bytes` > 0 too, the smaller of the two.
    pub gpu_memory_utilization: Option<f64>,
    /// Most sequences / tokens in one step (the GPU sizes its tables and scratch from them).
    pub max_num_seqs: usize,
    pub max_num_batched_tokens: usize,
    /// Weight format of the CUDA engine (the CPU reference always runs f32). `None`: fp16.
    pub precision: Option<crate::quant::WeightFormat>,
}

/// Backends leave decode steps in flight (`PagedBackend::launch`) so the serve engine processes
/// the previous step's tokens while the next one runs (H200, TinyLlama shape, 64 streams: 30,842 vs
/// 26,689 output tok/s, docs/benchmarks/2026-11-30-h200-session3). `TRTFORGE_SERVE_OVERLAP=0`
/// turns it off (one step at a time).
pub fn overlap_requested() -> bool {
    std::env::var("TRTFORGE_SERVE_OVERLAP").as_deref() != Ok("0")
}

/// While a decode step runs, the serve engine queues the next one for the same batch
/// (`PagedBackend::launch_next`) before it waits for the tokens, and prefill / mixed steps are
/// left in flight too, so the GPU goes from step to step without waiting for the host (the
/// default since session 5: H200, TinyLlama shape, fresh servers at 64 streams 35,275 vs 33,871
/// output tok/s, GPU idle between steps 6–10 vs 48–76 µs, docs/benchmarks/2026-11-30-h200-serve3).
/// `TRTFORGE_SERVE_AHEAD=0` keeps one step in flight; needs overlap on.
pub fn ahead_requested() -> bool {
    overlap_requested() && std::env::var("TRTFORGE_SERVE_AHEAD").as_deref() != Ok("0")
}

/// Device memory kept free beside the KV pool in `--gpu-memory-utilization` mode: decode graphs
/// are instantiated and cuBLAS may grow after the pool is sized.
pub const GPU_HEADROOM_BYTES: u64 = 512 << 20;

/// KV pool bytes for `--gpu-memory-utilization fraction` (vLLM's meaning): this process may take
/// `fraction` of the device's `total` memory; what is in use once the weights and workspace are
/// loaded (`total - free_after_load`: this process and any other) and a headroom come off it.
/// Rounded down to whole blocks of `block_bytes`. An error says what is in use and which fraction
/// would hold a block when none fits.
pub fn kv_bytes_for_fraction(
    total: u64,
    free_after_load: u64,
    fraction: f64,
    headroom: u64,
    block_bytes: u64,
) -> Result<u64> {
    if !(fraction > 0.0 && fraction <= 1.0) {
        return Err(Error::Invalid(format!("--gpu-memory-utilization must be in (0, 1], got {fraction}")));
    }
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let used = total.saturating_sub(free_after_load);
    let allowed = (total as f64 * fraction) as u64;
    let budget = allowed.saturating_sub(used).saturating_sub(headroom).min(free_after_load.saturating_sub(headroom));
    let block = block_bytes.max(1);
    if budget < block {
        let need = (used + headroom + block) as f64 / total.max(1) as f64;
        return Err(Error::Invalid(format!(
            "--gpu-memory-utilization {fraction} allows {:.2} GiB of the device's {:.2} GiB, but {:.2} GiB are in use after loading the weights and workspace (this process and others) and {:.2} GiB are kept free: no KV block of {block} bytes fits; {}",
            gib(allowed),
            gib(total),
            gib(used),
            gib(headroom),
            if need <= 1.0 {
                format!("use at least --gpu-memory-utilization {:.3} or give --kv-cache-memory", (need * 1000.0).ceil() / 1000.0)
            } else {
                "the device has no room for a KV cache beside this model".to_string()
            }
        )));
    }
    Ok(budget / block * block)
}

/// Bytes one block takes across all layers' K and V pools.
pub fn block_bytes(c: &LlamaConfig, dtype_bytes: usize) -> usize {
    2 * c.num_hidden_layers * BLOCK_SIZE * c.kv_dim() * dtype_bytes
}

/// Blocks that fit in `budget` bytes (at least one error-free answer: 0 means too small).
pub fn blocks_for_budget(c: &LlamaConfig, dtype_bytes: usize, budget: u64) -> usize {
    (budget / block_bytes(c, dtype_bytes).max(1) as u64) as usize
}

/// Checks a step against the pool before any work, so a bad table is an error, not a panic.
pub fn check_step(cfg: &LlamaConfig, num_blocks: usize, max_len: usize, seqs: &[PagedSeq]) -> Result<()> {
    for (i, s) in seqs.iter().enumerate() {
        if s.tokens.is_empty() {
            return Err(Error::Invalid(format!("paged step: sequence {i} has no new tokens")));
        }
        let end = s.start + s.tokens.len();
        if end > max_len {
            return Err(Error::Invalid(format!(
                "paged step: sequence {i} reaches {end} tokens, beyond the {max_len} this backend holds"
            )));
        }
        let need = end.div_ceil(BLOCK_SIZE);
        if s.block_table.len() < need {
            return Err(Error::Invalid(format!(
                "paged step: sequence {i} needs {need} blocks for {end} tokens, its table has {}",
                s.block_table.len()
            )));
        }
        if let Some(b) = s.block_table[..need].iter().find(|&&b| b < 0 || b as usize >= num_blocks) {
            return Err(Error::Invalid(format!(
                "paged step: block {b} of sequence {i} is outside the pool of {num_blocks}"
            )));
        }
        if let Some(t) = s.tokens.iter().find(|&&t| t as usize >= cfg.vocab_size) {
            return Err(Error::Invalid(format!("token id {t} is outside the vocabulary (size {})", cfg.vocab_size)));
        }
        if let Some(p) = &s.sample {
            if !(p.temperature >= 0.0 && p.temperature.is_finite() && p.top_p > 0.0 && p.top_p <= 1.0)
                || p.logprobs.is_some_and(|k| k as usize > MAX_TOP_LOGPROBS)
            {
                return Err(Error::Invalid(format!("paged step: bad sampling settings {p:?}")));
            }
        }
        if s.score.is_some_and(|c| c.from_row + c.targets.len() > s.tokens.len() || c.top as usize > MAX_TOP_LOGPROBS) {
            return Err(Error::Invalid(format!("paged step: sequence {i} scores rows outside its chunk")));
        }
        if s.sample.is_some()
            && s.score.is_some_and(|c| c.from_row + c.targets.len() == s.tokens.len() && !c.targets.is_empty())
        {
            return Err(Error::Invalid(format!(
                "paged step: sequence {i} scores its last row, whose next token is the one it samples"
            )));
        }
        if let Some(t) = s.score.and_then(|c| c.targets.iter().find(|&&t| t as usize >= cfg.vocab_size)) {
            return Err(Error::Invalid(format!("token id {t} is outside the vocabulary (size {})", cfg.vocab_size)));
        }
    }
    Ok(())
}

/// Chooses a token from one row of logits (see [`TokenSampling`]); `pos` is the position the
/// token will take. `scratch` is reused between calls.
pub fn sample_token(logits: &[f32], s: &TokenSampling, pos: usize, scratch: &mut Vec<(f32, u32)>) -> u32 {
    if s.is_greedy() {
        return argmax(logits);
    }
    let draw = SplitMix64(s.seed ^ (pos as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)).next_f32();
    sample_logits(logits, s.temperature, s.top_k, s.top_p, draw, scratch)
}

/// [`sample_token`] on `logits` with `shaping` applied first (to a copy in `buf`): the CPU reference's
/// choice for a sampled row, which the CUDA backend's host path makes too.
pub fn sample_shaped(
    logits: &[f32],
    s: &TokenSampling,
    pos: usize,
    shaping: Option<&Shaping>,
    scratch: &mut Vec<(f32, u32)>,
    buf: &mut Vec<f32>,
) -> u32 {
    match shaping {
        Some(sh) => {
            buf.clear();
            buf.extend_from_slice(logits);
            sh.apply(buf);
            sample_token(buf, s, pos, scratch)
        }
        None => sample_token(logits, s, pos, scratch),
    }
}

/// One layer's pools: k and v, each (num_blocks, BLOCK_SIZE, n_kv_heads, head_dim).
struct LayerPool {
    k: Vec<f32>,
    v: Vec<f32>,
}

/// The f32 CPU reference over a paged KV cache.
pub struct CpuPagedBackend {
    w: Arc<ModelWeights>,
    /// Overlap (the default): `launch` computes the step but hands its tokens out through
    /// `collect` (how a GPU backend overlaps), so the engine's in-flight path runs on the CPU too.
    defer: bool,
    /// Tokens of the steps in flight, oldest first (at most two: `launch` + `launch_next`), with
    /// whether the step can be chained and its log-probabilities.
    deferred: std::collections::VecDeque<(Vec<u32>, bool, Vec<Option<TokenLogprobs>>)>,
    /// Log-probabilities of the step `step` last computed, then of the one `collect` returned.
    logprobs: Vec<Option<TokenLogprobs>>,
    /// Prompt log-probabilities of the step `step` last computed (`PagedSeq::score`), a list a sequence.
    prompt_logprobs: Vec<Vec<TokenLogprobs>>,
    /// fp8 activations and a quantized KV cache (values on the 8-bit grid, held as f32).
    quant: CpuQuant,
    /// Dynamic KV scales: per layer, the running absmax of K and V per (block, kv head). Empty
    /// unless the cache is quantized with dynamic scales.
    kv_amax: Vec<(Vec<f32>, Vec<f32>)>,
    num_blocks: usize,
    max_len: usize,
    pools: Vec<LayerPool>, // (layers)
    rope_cos: Vec<f32>,    // (max_len, head_dim / 2)
    rope_sin: Vec<f32>,    // (max_len, head_dim / 2)
}

impl CpuPagedBackend {
    /// Allocates a pool of as many blocks as fit in `kv_cache_bytes`.
    pub fn new(w: Arc<ModelWeights>, kv_cache_bytes: u64) -> Result<Self> {
        Self::with_quant(w, kv_cache_bytes, CpuQuant::default())
    }

    /// Like [`new`](Self::new), rounding linear inputs and cache writes as `quant` says. The pool
    /// stays f32 (sized by `kv_cache_bytes` at 4 bytes an element); [`PagedBackend::kv_format`]
    /// reports the quantized format's bytes per token.
    pub fn with_quant(w: Arc<ModelWeights>, kv_cache_bytes: u64, quant: CpuQuant) -> Result<Self> {
        let c = &w.config;
        if let Some(kv) = &quant.kv {
            kv.check(c)?;
        }
        if let Some(kv) = quant.kv.as_ref().filter(|k| k.dtype.quantized() && k.mode == KvScaleMode::Calibrated) {
            let ok = kv.scales.as_ref().is_some_and(|s| {
                s.k.len() == c.num_hidden_layers
                    && s.v.len() == c.num_hidden_layers
                    && s.k.iter().chain(&s.v).all(|l| l.len() == c.num_key_value_heads)
            });
            if !ok {
                return Err(Error::Invalid(format!(
                    "a {} KV cache with calibrated scales needs ({} layers, {} heads) scales for K and V",
                    kv.dtype.as_str(),
                    c.num_hidden_layers,
                    c.num_key_value_heads
                )));
            }
        }
        let num_blocks = blocks_for_budget(c, 4, kv_cache_bytes);
        if num_blocks == 0 {
            return Err(Error::Invalid(format!(
                "a KV cache of {kv_cache_bytes} bytes holds no block: one block of {BLOCK_SIZE} tokens takes {} bytes for this model",
                block_bytes(c, 4)
            )));
        }
        if num_blocks > i32::MAX as usize {
            return Err(Error::Invalid("KV cache too large for i32 block ids".into()));
        }
        let per_layer = num_blocks * BLOCK_SIZE * c.kv_dim();
        let pool_bytes = (2 * per_layer * c.num_hidden_layers * 4) as u64;
        if let Some(ram) = crate::util::physical_memory_bytes().filter(|&r| pool_bytes > r) {
            return Err(Error::Invalid(format!(
                "a KV cache of {:.1} GiB is more than this machine's {:.1} GiB of memory: give a smaller --kv-cache-memory",
                pool_bytes as f64 / (1u64 << 30) as f64,
                ram as f64 / (1u64 << 30) as f64
            )));
        }
        let pools =
            (0..c.num_hidden_layers).map(|_| LayerPool { k: vec![0.0; per_layer], v: vec![0.0; per_layer] }).collect();
        let max_len = c.max_position_embeddings.min(num_blocks * BLOCK_SIZE);
        let half = c.head_dim / 2;
        let inv = c.rope_inv_freq();
        let mut rope_cos = vec![0.0; max_len * half];
        let mut rope_sin = vec![0.0; max_len * half];
        for p in 0..max_len {
            for (i, f) in inv.iter().enumerate() {
                // Same as CpuBackend (and HF): the angle in f32 from f32 inverse frequencies.
                let a = p as f32 * f;
                rope_cos[p * half + i] = a.cos();
                rope_sin[p * half + i] = a.sin();
            }
        }
        let dynamic = quant.kv.as_ref().is_some_and(|k| k.dtype.quantized() && k.mode == KvScaleMode::Dynamic);
        let kv_amax = if dynamic {
            let n = num_blocks * c.num_key_value_heads;
            (0..c.num_hidden_layers).map(|_| (vec![0.0; n], vec![0.0; n])).collect()
        } else {
            Vec::new()
        };
        let defer = overlap_requested();
        Ok(CpuPagedBackend {
            w,
            defer,
            deferred: Default::default(),
            logprobs: Vec::new(),
            prompt_logprobs: Vec::new(),
            quant,
            kv_amax,
            num_blocks,
            max_len,
            pools,
            rope_cos,
            rope_sin,
        })
    }
}

impl PagedBackend for CpuPagedBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }
    fn config(&self) -> &LlamaConfig {
        &self.w.config
    }
    fn num_blocks(&self) -> usize {
        self.num_blocks
    }
    fn max_model_len(&self) -> usize {
        self.max_len
    }
    fn kv_cache_bytes(&self) -> u64 {
        self.pools.iter().map(|p| (p.k.len() + p.v.len()) as u64 * 4).sum()
    }
    fn kv_format(&self) -> (String, f64) {
        let c = &self.w.config;
        match self.quant.kv.as_ref().filter(|k| k.dtype.quantized()) {
            Some(k) => (
                format!(
                    "{} ({}{})",
                    k.dtype.as_str(),
                    if k.mode == KvScaleMode::Dynamic { "dynamic" } else { "calibrated" },
                    crate::quant::kv::k_form_label(k.k_mean.is_some(), k.rotate.is_some())
                ),
                crate::quant::kv::bytes_per_token(
                    c.num_hidden_layers,
                    c.num_key_value_heads,
                    c.head_dim,
                    k.dtype,
                    k.mode,
                    4,
                ),
            ),
            None => ("f32".into(), (2 * c.num_hidden_layers * c.kv_dim() * 4) as f64),
        }
    }

    fn launch(&mut self, seqs: &[PagedSeq]) -> Result<Option<Vec<u32>>> {
        let ids = self.step(seqs)?;
        // A step that scores prompt rows returns at once (its prompt log-probabilities stay for
        // `take_prompt_logprobs`).
        if !self.defer || !self.prompt_logprobs.is_empty() {
            return Ok(Some(ids));
        }
        // A step whose every sequence decodes and samples can be followed by `launch_next`.
        let chain = seqs.iter().all(|s| s.tokens.len() == 1 && s.sample.is_some());
        let lp = std::mem::take(&mut self.logprobs);
        self.deferred.push_back((ids, chain, lp));
        Ok(None)
    }

    fn collect(&mut self) -> Result<Vec<u32>> {
        let (ids, _, lp) =
            self.deferred.pop_front().ok_or_else(|| Error::Invalid("paged backend: no step in flight".into()))?;
        self.logprobs = lp;
        Ok(ids)
    }

    fn supports_logprobs(&self) -> bool {
        true
    }

    fn take_logprobs(&mut self) -> Vec<Option<TokenLogprobs>> {
        std::mem::take(&mut self.logprobs)
    }

    fn take_prompt_logprobs(&mut self) -> Vec<Vec<TokenLogprobs>> {
        std::mem::take(&mut self.prompt_logprobs)
    }

    fn supports_shaping(&self) -> bool {
        true
    }

    fn launch_next(&mut self, seqs: &[NextSeq]) -> Result<bool> {
        // The step in flight's tokens are known here (the CPU computed them at launch): they are
        // the new step's inputs, as a GPU would take them from its own output buffer.
        let prev = match self.deferred.back() {
            Some((ids, true, _)) if self.deferred.len() == 1 && ids.len() == seqs.len() && !seqs.is_empty() => {
                ids.clone()
            }
            _ => return Ok(false),
        };
        let toks: Vec<[u32; 1]> = prev.iter().map(|&t| [t]).collect();
        let step: Vec<PagedSeq> =
            seqs.iter().zip(&toks).map(|(n, t)| PagedSeq::new(t, n.start, n.block_table, Some(n.sample))).collect();
        let ids = self.step(&step)?;
        let lp = std::mem::take(&mut self.logprobs);
        self.deferred.push_back((ids, true, lp));
        Ok(true)
    }

    fn step(&mut self, seqs: &[PagedSeq]) -> Result<Vec<u32>> {
        self.logprobs.clear();
        self.prompt_logprobs.clear();
        check_step(&self.w.config, self.num_blocks, self.max_len, seqs)?;
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let mut rows = Vec::with_capacity(seqs.len());
        let mut tokens = Vec::new();
        let mut positions = Vec::new();
        // The head runs on the sampled rows first (logits row r = the r-th sampled sequence), then on
        // the scored prompt rows.
        let mut out_rows = Vec::new();
        let mut scored = Vec::new();
        for s in seqs {
            let row0 = tokens.len();
            rows.push(row0);
            tokens.extend_from_slice(s.tokens);
            positions.extend(s.start..s.start + s.tokens.len());
            if s.sample.is_some() {
                out_rows.push(row0 + s.tokens.len() - 1);
            }
            if let Some(c) = s.score {
                scored.extend((0..c.targets.len()).map(|i| row0 + c.from_row + i));
            }
        }
        let n_sampled = out_rows.len();
        out_rows.extend(scored);
        let w = Arc::clone(&self.w);
        let mut pass = PagedPass {
            w: &w,
            quant: &self.quant,
            kv_amax: &mut self.kv_amax,
            pools: &mut self.pools,
            rope_cos: &self.rope_cos,
            rope_sin: &self.rope_sin,
            seqs,
            rows: &rows,
            tokens: &tokens,
            positions: &positions,
            out_rows: &out_rows,
        };
        // With no sampled sequence (prefill chunks only) the head runs on zero rows.
        let logits = forward(&w.config, &mut pass)?; // (out_rows, vocab)
        let vocab = w.config.vocab_size;
        if seqs.iter().any(|s| s.score.is_some()) {
            let mut r = n_sampled;
            self.prompt_logprobs = seqs
                .iter()
                .map(|s| {
                    let Some(c) = s.score else { return Vec::new() };
                    let at = r;
                    r += c.targets.len();
                    c.targets
                        .par_iter()
                        .enumerate()
                        .map(|(i, &t)| {
                            token_logprobs(&logits.data[(at + i) * vocab..(at + i + 1) * vocab], t, c.top as usize)
                        })
                        .collect()
                })
                .collect();
        }
        let wanted: Vec<(usize, TokenSampling, Option<Shaping>)> =
            seqs.iter().filter_map(|s| s.sample.map(|p| (s.start + s.tokens.len(), p, s.shaping))).collect();
        let ids: Vec<u32> = wanted
            .par_iter()
            .enumerate()
            .map_init(
                || (Vec::new(), Vec::new()),
                |(scratch, buf), (r, (pos, p, shape))| {
                    sample_shaped(&logits.data[r * vocab..(r + 1) * vocab], p, *pos, shape.as_ref(), scratch, buf)
                },
            )
            .collect();
        self.logprobs = if wanted.iter().any(|w| w.1.logprobs.is_some()) {
            rows_logprobs(&logits.data, vocab, &ids, wanted.iter().map(|w| w.1.logprobs))
        } else {
            Vec::new()
        };
        Ok(ids)
    }
}

struct PagedPass<'a> {
    w: &'a ModelWeights,
    quant: &'a CpuQuant,
    kv_amax: &'a mut [(Vec<f32>, Vec<f32>)],
    pools: &'a mut [LayerPool],
    rope_cos: &'a [f32],
    rope_sin: &'a [f32],
    seqs: &'a [PagedSeq<'a>],
    rows: &'a [usize],      // (seqs) first row of each sequence
    tokens: &'a [u32],      // (T)
    positions: &'a [usize], // (T)
    out_rows: &'a [usize],  // (T')
}

impl LlamaOps for PagedPass<'_> {
    type T = Act;

    fn embed(&mut self) -> Result<Act> {
        Ok(embed_rows(self.w, self.tokens))
    }

    fn rms_norm(&mut self, x: &Act, w: Param) -> Result<Act> {
        Ok(rms_norm_rows(x, &self.w.get(w).data, self.w.config.rms_norm_eps))
    }

    fn linear(&mut self, x: &Act, w: Param) -> Result<Act> {
        if let Some(s) = self.quant.input_scales.get(&w) {
            // fp8 activations: DequantizeLinear(QuantizeLinear(x, s), s), as the engine computes.
            let mut xq = Act { rows: x.rows, cols: x.cols, data: x.data.clone() };
            fp8::fake_quant_slice(&mut xq.data, *s);
            return Ok(linear_rows(&xq, self.w.get(w)));
        }
        Ok(linear_rows(x, self.w.get(w)))
    }

    fn rope(&mut self, x: &Act, n_heads: usize) -> Result<Act> {
        Ok(rope_rows(x, n_heads, self.positions, self.rope_cos, self.rope_sin))
    }

    fn attention(&mut self, layer: usize, q: &Act, k: &Act, v: &Act) -> Result<Act> {
        let c = &self.w.config;
        let (hd, nh, nkv) = (c.head_dim, c.num_attention_heads, c.num_key_value_heads);
        let kvd = nkv * hd;
        let group = nh / nkv;
        let qd = nh * hd;
        let pool = &mut self.pools[layer];
        // Write the new keys/values into their blocks: row p % 16 of block table[p / 16].
        for (s, &row0) in self.seqs.iter().zip(self.rows) {
            for i in 0..s.tokens.len() {
                let p = s.start + i;
                let slot = s.block_table[p / BLOCK_SIZE] as usize * BLOCK_SIZE + p % BLOCK_SIZE;
                let src = (row0 + i) * kvd..(row0 + i + 1) * kvd;
                pool.k[slot * kvd..(slot + 1) * kvd].copy_from_slice(&k.data[src.clone()]);
                pool.v[slot * kvd..(slot + 1) * kvd].copy_from_slice(&v.data[src]);
                if let Some(kq) = self.quant.kv.as_ref().filter(|k| k.dtype.quantized()) {
                    let block = s.block_table[p / BLOCK_SIZE] as usize;
                    if let Some(m) = kq.k_mean_of(layer, kvd) {
                        // K smoothing: the block holds k − mean, quantized below (rows re-quantized
                        // for a grown dynamic scale are already centred); never added back.
                        crate::quant::kv::subtract_mean(&mut pool.k[slot * kvd..(slot + 1) * kvd], m);
                    }
                    for (is_v, buf) in [(false, &mut pool.k), (true, &mut pool.v)] {
                        match (kq.mode, kq.scales.as_ref()) {
                            (KvScaleMode::Calibrated, Some(sc)) => {
                                let sc = if is_v { &sc.v[layer] } else { &sc.k[layer] };
                                let row = &mut buf[slot * kvd..(slot + 1) * kvd];
                                // K rotation: the block holds Q(kR)·Rᵀ (quant::kv::KvRotation).
                                let rot = kq.rotate.as_ref().filter(|_| !is_v);
                                if let Some(r) = rot {
                                    r.rotate(layer, row);
                                }
                                for (h, head) in row.chunks_mut(hd).enumerate() {
                                    head.iter_mut().for_each(|x| *x = kq.dtype.qdq(*x, sc[h]));
                                }
                                if let Some(r) = rot {
                                    r.unrotate(layer, row);
                                }
                            }
                            (KvScaleMode::Calibrated, None) => {}
                            (KvScaleMode::Dynamic, _) => {
                                // One token at a time, as a decode kernel writes: the block's absmax
                                // per head grows with each row (reset at row 0: a reused block
                                // starts over); rows already written are re-quantized from their
                                // stored values when it grows.
                                let (ka, va) = &mut self.kv_amax[layer];
                                let amax = if is_v { va } else { ka };
                                let b0 = block * BLOCK_SIZE;
                                let r = p % BLOCK_SIZE;
                                for h in 0..nkv {
                                    let old = if r == 0 { 0.0 } else { amax[block * nkv + h] };
                                    let cur = &buf[slot * kvd + h * hd..slot * kvd + (h + 1) * hd];
                                    let m = cur.iter().fold(old, |a, v| a.max(v.abs()));
                                    amax[block * nkv + h] = m;
                                    let scale = kq.dtype.scale_for(m);
                                    let first = if m > old { 0 } else { r };
                                    for rr in first..=r {
                                        let at = (b0 + rr) * kvd + h * hd;
                                        buf[at..at + hd].iter_mut().for_each(|x| *x = kq.dtype.qdq(*x, scale));
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let (kp, vp) = (&pool.k, &pool.v);
        let scale = 1.0 / (hd as f32).sqrt();
        // One task per (sequence, kv head, tile of up to ATT_TILE / group consecutive rows): the tile's rows ×
        // the group's query heads share one gather of the prefix's K / V and two GEMMs (a row at a time re-read
        // the whole prefix for every head: 68 prompt tok/s at 2.4k tokens on 2 cores). A row's numbers still do
        // not depend on the tile, the batch or the chunking: each score is one micro-kernel dot product over
        // head_dim (as in `linear_rows`), its maximum, exponentials and sum run in position order, and its
        // output sums p · v over positions in the GEMM's fixed depth blocks from position 0, the positions it
        // does not attend to contributing exact zeros (`attention_rows_do_not_depend_on_the_batch`).
        let tile = (ATT_TILE / group).max(1);
        let mut tasks: Vec<(usize, usize, usize, usize)> = Vec::new(); // (sequence, kv head, first row, rows)
        for (si, (s, &row0)) in self.seqs.iter().zip(self.rows).enumerate() {
            for kvh in 0..nkv {
                let mut i = 0;
                while i < s.tokens.len() {
                    let m = tile.min(s.tokens.len() - i);
                    tasks.push((si, kvh, row0 + i, m));
                    i += m;
                }
            }
        }
        let positions = self.positions;
        let parts: Vec<Vec<f32>> = tasks
            .par_iter()
            .map_init(AttScratch::default, |t: &mut AttScratch, &(si, kvh, r0, nr)| {
                let s = &self.seqs[si];
                let pos = &positions[r0..r0 + nr]; // row i attends to positions 0..=pos[i]
                let len = pos.iter().max().map_or(0, |&p| p + 1);
                let nq = nr * group; // (row, head of the group) pairs, row-major
                t.q.clear();
                for i in 0..nr {
                    let at = (r0 + i) * qd + kvh * group * hd;
                    t.q.extend_from_slice(&q.data[at..at + group * hd]);
                }
                // The prefix's K / V rows of this kv head, gathered from their blocks: (len, hd) each.
                t.k.clear();
                t.v.clear();
                for j in 0..len {
                    let at = (s.block_table[j / BLOCK_SIZE] as usize * BLOCK_SIZE + j % BLOCK_SIZE) * kvd + kvh * hd;
                    t.k.extend_from_slice(&kp[at..at + hd]);
                    t.v.extend_from_slice(&vp[at..at + hd]);
                }
                t.s.clear();
                t.s.resize(nq * len, 0.0);
                let qv = ArrayView2::from_shape((nq, hd), &t.q[..]).expect("query tile");
                let kv = ArrayView2::from_shape((len, hd), &t.k[..]).expect("keys");
                let vv = ArrayView2::from_shape((len, hd), &t.v[..]).expect("values");
                general_mat_mul(
                    scale,
                    &qv,
                    &kv.t(),
                    0.0,
                    &mut ArrayViewMut2::from_shape((nq, len), &mut t.s[..]).expect("scores"),
                );
                for (a, row) in t.s.chunks_exact_mut(len).enumerate() {
                    softmax_prefix(row, pos[a / group] + 1);
                }
                let mut o = vec![0.0f32; nq * hd];
                let pv = ArrayView2::from_shape((nq, len), &t.s[..]).expect("probabilities");
                general_mat_mul(
                    1.0,
                    &pv,
                    &vv,
                    0.0,
                    &mut ArrayViewMut2::from_shape((nq, hd), &mut o[..]).expect("output tile"),
                );
                o
            })
            .collect();
        let mut out = vec![0.0f32; q.rows * qd]; // (T, n_heads·hd)
        for (&(_, kvh, r0, nr), o) in tasks.iter().zip(&parts) {
            for i in 0..nr {
                let at = (r0 + i) * qd + kvh * group * hd;
                out[at..at + group * hd].copy_from_slice(&o[i * group * hd..(i + 1) * group * hd]);
            }
        }
        Ok(Act { rows: q.rows, cols: qd, data: out })
    }

    fn swiglu(&mut self, gate: &Act, up: &Act) -> Result<Act> {
        Ok(swiglu_rows(gate, up))
    }

    fn add(&mut self, a: &Act, b: &Act) -> Result<Act> {
        Ok(add_rows(a, b))
    }

    fn select_outputs(&mut self, x: &Act) -> Result<Act> {
        Ok(select_rows(x, self.out_rows))
    }
}

/// Query rows × heads of one attention task (they share each cached K / V row it reads).
const ATT_TILE: usize = 64;

/// An attention task's buffers, kept per rayon worker: its query tile, the gathered keys and values,
/// the scores.
#[derive(Default)]
struct AttScratch {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    s: Vec<f32>,
}

/// Weight rows per rayon task.
const ROWS_PER_TASK: usize = 64;

/// `x · Wᵀ`: x (t, k), W (n, k) → (t, n), as one blocked GEMM (matrixmultiply) per block of
/// weight rows, for every `t` including 1.
///
/// The GEMM computes each output element by the same sequence of operations whatever `t` is and
/// wherever its row sits: its micro-kernel keeps one accumulator per element and walks k in
/// fixed-size blocks; the number of rows only changes how many tiles run. So unlike the
/// contiguous CPU backend (GEMV for small batches, GEMM for large), a sequence's numbers never
/// depend on the batch — `linear_rows_do_not_depend_on_the_batch` checks it bit for bit.
fn linear_rows(x: &Act, w: &Tensor) -> Act {
    let (t, k) = (x.rows, x.cols);
    let n = w.rows();
    debug_assert_eq!(w.cols(), k);
    let mut yt = vec![0.0f32; n * t]; // (n, t): a task owns whole weight rows
    if t > 0 {
        let xa = ArrayView2::from_shape((t, k), &x.data).expect("activation shape"); // invariant of Act
        yt.par_chunks_mut(t * ROWS_PER_TASK).enumerate().for_each(|(ci, out)| {
            let j0 = ci * ROWS_PER_TASK;
            let nj = out.len() / t;
            let wb = ArrayView2::from_shape((nj, k), &w.data[j0 * k..(j0 + nj) * k]).expect("weight shape"); // checked at load
            let mut ob = ArrayViewMut2::from_shape((nj, t), out).expect("output shape");
            // (nj, k) · (k, t) → (nj, t)
            general_mat_mul(1.0, &wb, &xa.t(), 0.0, &mut ob);
        });
    }
    let mut y = vec![0.0f32; t * n]; // (t, n)
    for r in 0..n {
        for i in 0..t {
            y[i * n + r] = yt[r * t + i];
        }
    }
    Act { rows: t, cols: n, data: y }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::dot;

    fn tiny() -> Arc<ModelWeights> {
        let mut c = LlamaConfig::preset("tiny").unwrap();
        c.max_position_embeddings = 256;
        Arc::new(ModelWeights::random(c, 7).unwrap())
    }

    /// Greedy tokens of one sequence run alone with its prompt in one chunk.
    fn run(b: &mut CpuPagedBackend, prompt: &[u32], table: &[i32], n_new: usize, chunk: usize) -> Vec<u32> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < prompt.len() {
            let end = (pos + chunk).min(prompt.len());
            let last = end == prompt.len();
            let s = PagedSeq::new(&prompt[pos..end], pos, table, last.then_some(TokenSampling::GREEDY));
            let r = b.step(&[s]).unwrap();
            if last {
                out.push(r[0]);
            }
            pos = end;
        }
        while out.len() < n_new {
            let t = [*out.last().unwrap()];
            let s = PagedSeq::new(&t, pos, table, Some(TokenSampling::GREEDY));
            pos += 1;
            out.push(b.step(&[s]).unwrap()[0]);
        }
        out
    }

    /// Each shaping term against its definition, on a hand-made row: the repetition penalty divides a seen positive
    /// logit and multiplies a seen negative one, once a token however often it was seen (prompt and generated
    /// alike); presence / frequency count generated tokens only; the end tokens are masked until `min_tokens`;
    /// `min_p` keeps exactly the tokens whose probability at the temperature is at least min_p × the top one's.
    #[test]
    fn shaping_terms_follow_their_definitions() {
        let row = [2.0f32, -1.0, 0.5, 3.0, -2.0, 1.0];
        let apply = |s: &LogitShaping, prompt: &[u32], gen: &[u32]| {
            let mut r = row;
            s.view(prompt, gen).apply(&mut r);
            r
        };
        let rep = LogitShaping { repetition: Some(2.0), ..Default::default() };
        assert_eq!(apply(&rep, &[0, 1, 0], &[4, 4]), [1.0, -2.0, 0.5, 3.0, -4.0, 1.0]);
        let pen = LogitShaping { presence: 0.5, frequency: 0.25, ..Default::default() };
        assert_eq!(apply(&pen, &[5, 5], &[2, 2, 3]), [2.0, -1.0, 0.5 - 0.5 - 0.5, 3.0 - 0.75, -2.0, 1.0]);
        let min = LogitShaping { min_tokens: 3, end: vec![3, 9], ..Default::default() };
        assert_eq!(apply(&min, &[], &[1, 2])[3], f32::NEG_INFINITY);
        assert_eq!(apply(&min, &[], &[1, 2, 0]), row);
        for (min_p, t) in [(0.3f32, 1.0f32), (0.05, 0.5), (0.9, 2.0)] {
            let s = LogitShaping { min_p, temperature: t, ..Default::default() };
            let got = apply(&s, &[], &[]);
            // probabilities at temperature t, from their definition
            let e: Vec<f64> = row.iter().map(|&l| (l as f64 / t as f64).exp()).collect();
            let (z, top) = (e.iter().sum::<f64>(), e.iter().cloned().fold(0.0, f64::max));
            for (i, (&g, &x)) in got.iter().zip(&e).enumerate() {
                let keep = x / z >= min_p as f64 * top / z;
                assert_eq!(g.is_finite(), keep, "min_p {min_p} t {t} token {i}");
                if keep {
                    assert_eq!(g, row[i]);
                }
            }
        }
    }

    #[test]
    fn chunking_and_batching_do_not_change_tokens() {
        let w = tiny();
        let bytes = block_bytes(&w.config, 4) as u64 * 64;
        let mut b = CpuPagedBackend::new(w.clone(), bytes).unwrap();
        let prompt_a: Vec<u32> = (0..37).map(|i| (i * 7 + 3) % 200).collect();
        let prompt_b: Vec<u32> = (0..5).map(|i| (i * 11 + 1) % 200).collect();
        // Scattered, non-contiguous blocks.
        let ta = [9, 3, 17, 40];
        let tb = [5, 60];
        let alone_a = run(&mut b, &prompt_a, &ta, 12, 1000);
        let chunked_a = run(&mut b, &prompt_a, &ta, 12, 7);
        assert_eq!(alone_a, chunked_a);
        let alone_b = run(&mut b, &prompt_b, &tb, 12, 1000);
        // Both together: b's prefill alongside a's chunks, then batched decodes.
        let mut toks_a = Vec::new();
        let mut toks_b = Vec::new();
        let r = b
            .step(&[
                PagedSeq::new(&prompt_a[..20], 0, &ta, None),
                PagedSeq::new(&prompt_b, 0, &tb, Some(TokenSampling::GREEDY)),
            ])
            .unwrap();
        toks_b.push(r[0]);
        let r = b
            .step(&[
                PagedSeq::new(&[toks_b[0]], 5, &tb, Some(TokenSampling::GREEDY)),
                PagedSeq::new(&prompt_a[20..], 20, &ta, Some(TokenSampling::GREEDY)),
            ])
            .unwrap();
        toks_b.push(r[0]);
        toks_a.push(r[1]);
        while toks_a.len() < 12 {
            let (la, lb) = ([*toks_a.last().unwrap()], [*toks_b.last().unwrap()]);
            let (pa, pb) = (37 + toks_a.len() - 1, 5 + toks_b.len() - 1);
            let mut seqs = vec![PagedSeq::new(&la, pa, &ta, Some(TokenSampling::GREEDY))];
            if toks_b.len() < 12 {
                seqs.push(PagedSeq::new(&lb, pb, &tb, Some(TokenSampling::GREEDY)));
            }
            let r = b.step(&seqs).unwrap();
            toks_a.push(r[0]);
            if r.len() > 1 {
                toks_b.push(r[1]);
            }
        }
        assert_eq!(toks_a, alone_a);
        assert_eq!(toks_b, alone_b);
    }

    /// Prompt log-probabilities of a 600-token sequence (scores past the GEMM's 256-deep blocks) are
    /// bit-identical in one chunk, in chunks of 97, and in chunks of 50 beside another sequence.
    #[test]
    fn attention_rows_do_not_depend_on_the_batch() {
        let mut c = LlamaConfig::preset("tiny").unwrap();
        c.max_position_embeddings = 640;
        let w = Arc::new(ModelWeights::random(c, 11).unwrap());
        let mut b = CpuPagedBackend::new(w.clone(), block_bytes(&w.config, 4) as u64 * 80).unwrap();
        let prompt: Vec<u32> = (0..600).map(|i| (i * 13 + 5) % 200).collect();
        let other: Vec<u32> = (0..300).map(|i| (i * 7 + 1) % 200).collect();
        let ta: Vec<i32> = (0..38).map(|i| i * 7 % 38 + 40).collect(); // scattered blocks 40..78
        let tb: Vec<i32> = (0..19).collect();
        type Bits = (u32, u32, Vec<(u32, u32)>); // token, logprob bits, top (id, logprob bits)
        let bits = |l: &[TokenLogprobs]| -> Vec<Bits> {
            l.iter()
                .map(|t| (t.token, t.logprob.to_bits(), t.top.iter().map(|&(i, p)| (i, p.to_bits())).collect()))
                .collect()
        };
        // Every row of a chunk scores the token after it (the last prompt row scores nothing).
        let score = |at: usize, n: usize| PromptScore {
            from_row: 0,
            targets: &prompt[at + 1..(at + n + 1).min(prompt.len())],
            top: 3,
        };
        let scored = |b: &mut CpuPagedBackend, chunk: usize, beside: bool| {
            let (mut got, mut pos) = (Vec::new(), 0);
            while pos < prompt.len() {
                let n = chunk.min(prompt.len() - pos);
                let mut seqs = vec![PagedSeq {
                    score: Some(score(pos, n)),
                    ..PagedSeq::new(&prompt[pos..pos + n], pos, &ta, None)
                }];
                let ob = pos.min(other.len());
                if beside && ob < other.len() {
                    let m = chunk.min(other.len() - ob);
                    seqs.push(PagedSeq::new(&other[ob..ob + m], ob, &tb, None));
                }
                b.step(&seqs).unwrap();
                got.extend(bits(&b.take_prompt_logprobs()[0]));
                pos += n;
            }
            got
        };
        let one = scored(&mut b, 600, false);
        assert_eq!(one.len(), 599);
        assert_eq!(scored(&mut b, 97, false), one, "chunks of 97");
        assert_eq!(scored(&mut b, 50, true), one, "chunks of 50 beside another sequence");
    }

    #[test]
    fn matches_the_contiguous_cpu_backend() {
        use crate::backend::{cpu::CpuBackend, Backend, SeqChunk};
        let w = tiny();
        let mut paged = CpuPagedBackend::new(w.clone(), block_bytes(&w.config, 4) as u64 * 16).unwrap();
        let mut cpu = CpuBackend::new(w.clone(), 1, 128).unwrap();
        let prompt: Vec<u32> = (0..23).map(|i| (i * 5 + 2) % 200).collect();
        let got = run(&mut paged, &prompt, &[4, 0, 9, 2, 7], 16, 1000);
        let mut want = Vec::new();
        let mut next = cpu.forward_greedy(&[SeqChunk { slot: 0, tokens: &prompt }]).unwrap()[0];
        for _ in 0..16 {
            want.push(next);
            next = cpu.forward_greedy(&[SeqChunk { slot: 0, tokens: &[next] }]).unwrap()[0];
        }
        assert_eq!(got, want);
    }

    /// A quantized KV cache (calibrated per-head int8, dynamic per-block fp8; plain and K-smoothed)
    /// and fp8 linear inputs: the paged pool rounds what the contiguous CPU backend rounds. Dynamic scales grow one token
    /// at a time here, so the contiguous backend is fed token by token too.
    #[test]
    fn quantized_kv_matches_the_contiguous_cpu_backend() {
        use crate::backend::cpu::{CpuBackend, KvQuant};
        use crate::backend::{Backend, SeqChunk};
        use crate::quant::kv::{KvCacheDtype, KvScales};
        let w = tiny();
        let c = w.config.clone();
        let heads = |v: f32| vec![vec![v; c.num_key_value_heads]; c.num_hidden_layers];
        let input_scales: std::collections::HashMap<Param, half::f16> =
            crate::quant::decoder_linears(&c).into_iter().map(|p| (p, half::f16::from_f32(0.02))).collect();
        let prompt: Vec<u32> = (0..23).map(|i| (i * 5 + 2) % 200).collect();
        for (dtype, mode, scales) in [
            (KvCacheDtype::Int8, KvScaleMode::Calibrated, Some(KvScales { k: heads(0.03), v: heads(0.02) })),
            (KvCacheDtype::Fp8, KvScaleMode::Dynamic, None),
        ] {
            // K smoothing: a per-(layer, head, channel) mean subtracted before every K write.
            let mean: Vec<f32> = (0..c.num_hidden_layers * c.kv_dim()).map(|i| 0.05 * (i as f32 * 0.7).sin()).collect();
            let plain = KvQuant { dtype, mode, scales, k_mean: None, rotate: None };
            let smooth = KvQuant { k_mean: Some(mean), ..plain.clone() };
            let quant = CpuQuant { input_scales: Default::default(), kv: Some(plain.clone()), ..Default::default() };
            let mut quants = vec![
                quant.clone(),
                CpuQuant { input_scales: input_scales.clone(), ..quant },
                CpuQuant { input_scales: input_scales.clone(), kv: Some(smooth), ..Default::default() },
            ];
            if mode == KvScaleMode::Calibrated {
                // K rotation (calibrated scales only).
                let rot = Some(crate::quant::kv::KvRotation::new(5, c.num_hidden_layers, c.head_dim).unwrap());
                let rotated = KvQuant { rotate: rot, ..plain.clone() };
                quants.push(CpuQuant { kv: Some(rotated), ..Default::default() });
            }
            for quant in quants {
                let bytes = block_bytes(&c, 4) as u64 * 16;
                let mut paged = CpuPagedBackend::with_quant(w.clone(), bytes, quant.clone()).unwrap();
                assert_eq!(
                    paged.kv_format().1,
                    crate::quant::kv::bytes_per_token(
                        c.num_hidden_layers,
                        c.num_key_value_heads,
                        c.head_dim,
                        dtype,
                        mode,
                        4
                    )
                );
                let mut cpu = CpuBackend::with_quant(w.clone(), 1, 128, quant).unwrap();
                let got = run(&mut paged, &prompt, &[4, 0, 9, 2, 7], 16, 5);
                let mut next = 0;
                for t in &prompt {
                    next = cpu.forward_greedy(&[SeqChunk { slot: 0, tokens: std::slice::from_ref(t) }]).unwrap()[0];
                }
                let mut want = Vec::new();
                for _ in 0..16 {
                    want.push(next);
                    next = cpu.forward_greedy(&[SeqChunk { slot: 0, tokens: &[next] }]).unwrap()[0];
                }
                assert_eq!(got, want, "{dtype:?} {mode:?}");
            }
        }
    }

    fn act(rows: usize, cols: usize, seed: u64) -> Act {
        let mut r = SplitMix64(seed);
        Act { rows, cols, data: (0..rows * cols).map(|_| r.next_f32() - 0.5).collect() }
    }

    #[test]
    fn linear_rows_do_not_depend_on_the_batch() {
        // Odd sizes (edge tiles), k past one GEMM depth block, many rows.
        for (n, k, t) in [(50usize, 67usize, 11usize), (200, 1100, 130)] {
            let w = Tensor::new(vec![n, k], act(n, k, 1).data);
            let x = act(t, k, 2);
            let all = linear_rows(&x, &w);
            let rows = |a: usize, b: usize| Act { rows: b - a, cols: k, data: x.data[a * k..b * k].to_vec() };
            for (a, b) in [(0, 1), (t - 1, t), (5, 7), (3, t - 2), (t / 2, t / 2 + 1)] {
                assert_eq!(linear_rows(&rows(a, b), &w).data, all.data[a * n..b * n].to_vec(), "rows {a}..{b} of {t}");
            }
            let want: Vec<f32> = (0..t * n).map(|e| dot(&x.data[(e / n) * k..(e / n + 1) * k], w.row(e % n))).collect();
            for (a, b) in all.data.iter().zip(&want) {
                assert!((a - b).abs() < 1e-3, "{a} vs {b}");
            }
        }
    }

    /// `cargo test --release --lib paged::tests::linear_speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn linear_speed() {
        let w = Tensor::new(vec![1536, 576], act(1536, 576, 1).data);
        for t in [1usize, 16, 320] {
            let x = act(t, 576, 2);
            let reps = if t == 1 {
                200
            } else if t == 16 {
                50
            } else {
                5
            };
            let t0 = std::time::Instant::now();
            for _ in 0..reps {
                std::hint::black_box(linear_rows(&x, &w));
            }
            let ours = t0.elapsed().as_secs_f64() / reps as f64;
            let xa = ndarray::ArrayView2::from_shape((t, 576), &x.data).unwrap();
            let wa = ndarray::ArrayView2::from_shape((1536, 576), &w.data).unwrap();
            let t0 = std::time::Instant::now();
            for _ in 0..reps {
                std::hint::black_box(xa.dot(&wa.t()));
            }
            let gemm = t0.elapsed().as_secs_f64() / reps as f64;
            let gf = |s: f64| 2.0 * (t * 576 * 1536) as f64 / s / 1e9;
            crate::util::errln!(
                "t={t}: ours {:.3} ms ({:.1} GFLOP/s), gemm {:.3} ms ({:.1} GFLOP/s)",
                ours * 1e3,
                gf(ours),
                gemm * 1e3,
                gf(gemm)
            );
        }
    }

    #[test]
    fn kv_pool_from_a_fraction_of_gpu_memory() {
        const G: u64 = 1 << 30;
        // 140 GiB device, 3 GiB in use after loading, 0.5 GiB headroom, 1 MiB blocks:
        // 0.9 × 140 − 3 − 0.5 = 122.5 GiB.
        let b = kv_bytes_for_fraction(140 * G, 137 * G, 0.9, G / 2, 1 << 20).unwrap();
        assert_eq!(b, (0.9 * 140.0 * G as f64) as u64 / (1 << 20) * (1 << 20) - 3 * G - G / 2);
        assert_eq!(b % (1 << 20), 0);
        // Never more than what is free (another process took most of the device).
        let b = kv_bytes_for_fraction(140 * G, 10 * G, 1.0, G / 2, 1 << 20).unwrap();
        assert_eq!(b, 10 * G - G / 2);
        // Too small a fraction: the error names what is used and the fraction that would fit.
        let e = kv_bytes_for_fraction(140 * G, 120 * G, 0.1, G / 2, 1 << 20).unwrap_err().to_string();
        assert!(e.contains("20.00 GiB are in use") && e.contains("at least --gpu-memory-utilization 0.147"), "{e}");
        // Nothing fits at all.
        let e = kv_bytes_for_fraction(140 * G, G / 4, 1.0, G / 2, 1 << 20).unwrap_err().to_string();
        assert!(e.contains("no room"), "{e}");
        for bad in [0.0, -0.5, 1.5, f64::NAN] {
            assert!(kv_bytes_for_fraction(140 * G, 137 * G, bad, 0, 1).is_err());
        }
    }

    #[test]
    fn bad_tables_are_errors() {
        let w = tiny();
        let mut b = CpuPagedBackend::new(w.clone(), block_bytes(&w.config, 4) as u64 * 4).unwrap();
        let t = [1u32, 2, 3];
        for table in [&[][..], &[-1][..], &[4][..]] {
            let s = PagedSeq::new(&t, 0, table, None);
            assert!(b.step(&[s]).is_err());
        }
        assert!(CpuPagedBackend::new(w, 10).is_err());
    }

    #[test]
    fn sampling_is_seeded_by_position() {
        let logits: Vec<f32> = (0..100).map(|i| ((i * 37) % 17) as f32 * 0.3).collect();
        let s = TokenSampling { temperature: 0.8, top_k: 20, top_p: 0.9, seed: 42, logprobs: None };
        let mut scratch = Vec::new();
        let a: Vec<u32> = (0..20).map(|p| sample_token(&logits, &s, p, &mut scratch)).collect();
        let b: Vec<u32> = (0..20).map(|p| sample_token(&logits, &s, p, &mut scratch)).collect();
        assert_eq!(a, b);
        assert!(a.iter().collect::<std::collections::HashSet<_>>().len() > 1);
        assert_eq!(sample_token(&logits, &TokenSampling::GREEDY, 0, &mut scratch), argmax(&logits));
    }

    #[test]
    fn check_step_refuses_bad_scores_and_logprob_counts() {
        let cfg = tiny().config.clone();
        let toks = [1u32, 2, 3, 4];
        let table = [0i32];
        let lp = |k: u8| Some(TokenSampling { logprobs: Some(k), ..TokenSampling::GREEDY });
        let scored = |from_row: usize, t: &'static [u32], top: u8, sample| PagedSeq {
            score: Some(PromptScore { from_row, targets: t, top }),
            ..PagedSeq::new(&toks, 0, &table, sample)
        };
        let err = |s: PagedSeq| check_step(&cfg, 4, 64, &[s]).unwrap_err().to_string();
        // Rows 0..3 score tokens 1..4 of an unsampled chunk: fine; so is a sampled chunk scoring rows 0..2.
        assert!(check_step(&cfg, 4, 64, &[scored(0, &[2, 3, 4], 20, None)]).is_ok());
        assert!(check_step(&cfg, 4, 64, &[scored(0, &[2, 3], 0, lp(20))]).is_ok());
        assert!(err(scored(2, &[3, 4, 5], 0, None)).contains("outside its chunk"));
        assert!(err(scored(0, &[2], 21, None)).contains("outside its chunk"));
        assert!(err(scored(1, &[3, 4, 9], 0, Some(TokenSampling::GREEDY))).contains("scores its last row"));
        let big = cfg.vocab_size as u32;
        let far: &'static [u32] = Box::leak(vec![big].into_boxed_slice());
        assert!(err(scored(0, far, 0, None)).contains("outside the vocabulary"));
        assert!(err(PagedSeq::new(&toks, 0, &table, lp(21))).contains("bad sampling settings"));
    }
}
