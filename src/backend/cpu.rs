//! CPU reference executor: f32 everywhere, multi-threaded with rayon, KV cache allocated up front.
//!
//! Correctness first: this is the backend every other one is checked against. Decode GEMVs read each
//! weight row once for the whole batch; prefill uses a blocked GEMM (ndarray/matrixmultiply).
use super::{check_chunks, Backend, Logits, LogitsOut, SeqChunk};
use crate::error::{Error, Result};
use crate::model::graph::{forward, LlamaOps};
use crate::model::{LlamaConfig, ModelWeights, Param, Tensor};
use crate::quant::fp8;
use crate::quant::kv::{subtract_mean, KvCacheDtype, KvScaleMode, KvScales, KV_BLOCK};
use half::f16;
use ndarray::{linalg::general_mat_mul, s, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;
use std::sync::Arc;

/// Above this many rows a linear layer switches from GEMV to GEMM.
const GEMV_MAX_ROWS: usize = 4;
/// Weight rows per rayon task in the GEMV path.
const GEMV_ROWS_PER_TASK: usize = 32;

/// One layer's cache: k and v, each (max_batch, max_seq, kv_dim).
struct LayerCache {
    k: Vec<f32>,
    v: Vec<f32>,
}

/// What a quantized engine rounds beyond its weights, so the CPU reference computes the same model:
/// fp8 activations (each listed linear's input goes through `DequantizeLinear(QuantizeLinear(x, s), s)`)
/// and a quantized KV cache. Weights are quantized by passing their dequantized values.
#[derive(Debug, Clone, Default)]
pub struct CpuQuant {
    pub input_scales: std::collections::HashMap<Param, f16>,
    pub kv: Option<KvQuant>,
    /// The CUDA engine's FP8 GEMM numerics (W8A8 with dynamic per-row input scales on passes of
    /// more than `above` rows, `fp8::fake_quant_rows`), for the checks; None: not rounded.
    pub fp8_rows: Option<Fp8Rows>,
    /// Round every linear input to f16 first, as the CUDA engine's f16 activations are: a twin of
    /// the reference that differs from it the way the engine does (checks: how far 8-bit rounding
    /// on the fly lets two such computations drift apart).
    pub f16_inputs: bool,
}

/// Linears whose inputs are rounded to E4M3 per row in passes of more than `above` rows (the CUDA
/// engine's GEMM path; fewer rows run its weight-only GEMV).
#[derive(Debug, Clone, Default)]
pub struct Fp8Rows {
    pub params: std::collections::HashSet<Param>,
    pub above: usize,
}

/// A quantized KV cache: its dtype, and static per-head scales or dynamic per-block ones.
#[derive(Debug, Clone)]
pub struct KvQuant {
    pub dtype: KvCacheDtype,
    pub mode: KvScaleMode,
    /// Required for [`KvScaleMode::Calibrated`].
    pub scales: Option<KvScales>,
    /// K smoothing: the mean of post-RoPE K per (layer, kv head, channel), flat (layers · kv_dim).
    /// Every K write subtracts it before quantizing; attention reads the dequantized `k − mean` as
    /// it is (no add-back: softmax over keys ignores the constant `q · mean`). None: plain K.
    pub k_mean: Option<Vec<f32>>,
    /// K rotation (`kv_rotate`, calibrated scales only): every K write rotates the new keys, rounds
    /// them with the rotated keys' scales and rotates the result back, so the cache holds
    /// `Q(kR)·Rᵀ` and attention reads it unchanged (the scores equal `(qR)·Q(kR)`).
    pub rotate: Option<crate::quant::kv::KvRotation>,
}

impl KvQuant {
    /// Layer `layer`'s K means (kv_dim), when the cache is quantized and smoothed.
    pub fn k_mean_of(&self, layer: usize, kv_dim: usize) -> Option<&[f32]> {
        let m = self.k_mean.as_ref().filter(|_| self.dtype.quantized())?;
        m.get(layer * kv_dim..(layer + 1) * kv_dim)
    }

    /// Checks the scales' and means' shapes against a model.
    pub fn check(&self, c: &LlamaConfig) -> Result<()> {
        if let Some(r) = &self.rotate {
            if let Some(m) = r.mismatch(c.num_hidden_layers, c.head_dim) {
                return Err(Error::Invalid(m));
            }
            if self.mode != KvScaleMode::Calibrated {
                return Err(Error::Invalid("a rotated K cache needs calibrated KV scales".into()));
            }
        }
        if let Some(m) = &self.k_mean {
            if m.len() != c.num_hidden_layers * c.kv_dim() {
                return Err(Error::Invalid(format!(
                    "K means must be (layers {}, kv heads {}, head_dim {}) = {} values, got {}",
                    c.num_hidden_layers,
                    c.num_key_value_heads,
                    c.head_dim,
                    c.num_hidden_layers * c.kv_dim(),
                    m.len()
                )));
            }
        }
        Ok(())
    }
}

pub struct CpuBackend {
    w: Arc<ModelWeights>,
    quant: CpuQuant,
    /// Dynamic KV scales: per layer, the running absmax of K and V per (slot, block, kv head),
    /// each (max_batch, ceil(max_seq / KV_BLOCK), kv_heads). Empty unless dynamic.
    kv_amax: Vec<(Vec<f32>, Vec<f32>)>,
    max_batch: usize,
    max_seq: usize,
    cache: Vec<LayerCache>, // (layers)
    lens: Vec<usize>,       // (max_batch)
    rope_cos: Vec<f32>,     // (max_seq, head_dim / 2)
    rope_sin: Vec<f32>,     // (max_seq, head_dim / 2)
}

impl CpuBackend {
    /// Allocates the KV cache for `max_batch` sequences of up to `max_seq` tokens.
    pub fn new(w: Arc<ModelWeights>, max_batch: usize, max_seq: usize) -> Result<Self> {
        Self::with_quant(w, max_batch, max_seq, CpuQuant::default())
    }

    /// What this backend rounds beyond its weights.
    pub fn quant(&self) -> &CpuQuant {
        &self.quant
    }

    /// A twin with the same weights, rounding and sizes and an empty cache.
    pub fn fresh(&self) -> Result<Self> {
        Self::with_quant(Arc::clone(&self.w), self.max_batch, self.max_seq, self.quant.clone())
    }

    /// Like [`new`](Self::new), computing with fp8 activations and/or a quantized KV cache.
    pub fn with_quant(w: Arc<ModelWeights>, max_batch: usize, max_seq: usize, quant: CpuQuant) -> Result<Self> {
        let c = &w.config;
        if let Some(kv) = &quant.kv {
            kv.check(c)?;
            match (&kv.scales, kv.mode) {
                (None, KvScaleMode::Calibrated) if kv.dtype.quantized() => {
                    return Err(Error::Invalid(format!(
                        "a {} KV cache with calibrated scales needs the scales",
                        kv.dtype.as_str()
                    )))
                }
                (Some(s), _)
                    if s.k.len() != c.num_hidden_layers
                        || s.v.len() != c.num_hidden_layers
                        || s.k.iter().chain(&s.v).any(|l| l.len() != c.num_key_value_heads) =>
                {
                    return Err(Error::Invalid(format!(
                        "KV scales must be ({} layers, {} heads) for K and V",
                        c.num_hidden_layers, c.num_key_value_heads
                    )))
                }
                _ => {}
            }
        }
        let dynamic = quant.kv.as_ref().is_some_and(|k| k.dtype.quantized() && k.mode == KvScaleMode::Dynamic);
        let kv_amax = if dynamic {
            let n = max_batch * max_seq.div_ceil(KV_BLOCK) * c.num_key_value_heads;
            (0..c.num_hidden_layers).map(|_| (vec![0.0; n], vec![0.0; n])).collect()
        } else {
            Vec::new()
        };
        if max_batch == 0 || max_seq == 0 {
            return Err(Error::Invalid("max_batch and max_seq must be at least 1".into()));
        }
        if max_seq > c.max_position_embeddings {
            return Err(Error::Invalid(format!(
                "{max_seq} tokens requested, but the model supports a context of {} tokens",
                c.max_position_embeddings
            )));
        }
        let per_layer = max_batch
            .checked_mul(max_seq)
            .and_then(|n| n.checked_mul(c.kv_dim()))
            .ok_or_else(|| Error::Invalid("KV cache size overflows".into()))?;
        // Fallible: a batch × sequence too large for this machine is an error, not an abort.
        let cache = (0..c.num_hidden_layers)
            .map(|_| {
                Ok(LayerCache { k: zeroed(per_layer, max_batch, max_seq)?, v: zeroed(per_layer, max_batch, max_seq)? })
            })
            .collect::<Result<Vec<_>>>()?;
        let half = c.head_dim / 2;
        let inv = c.rope_inv_freq();
        let mut rope_cos = vec![0.0; max_seq * half];
        let mut rope_sin = vec![0.0; max_seq * half];
        for p in 0..max_seq {
            for (i, f) in inv.iter().enumerate() {
                // Same order as HF: the angle is computed in f32 from f32 inverse frequencies.
                let a = p as f32 * f;
                rope_cos[p * half + i] = a.cos();
                rope_sin[p * half + i] = a.sin();
            }
        }
        Ok(CpuBackend { w, quant, kv_amax, max_batch, max_seq, cache, lens: vec![0; max_batch], rope_cos, rope_sin })
    }

    pub fn weights(&self) -> &Arc<ModelWeights> {
        &self.w
    }

    /// The cached keys and values of `slot` in layer `layer`, each (seq_len, kv_dim): what
    /// calibration reads for per-head KV ranges.
    pub fn cached_kv(&self, layer: usize, slot: usize) -> (&[f32], &[f32]) {
        let kvd = self.w.config.kv_dim();
        let (base, n) = (slot * self.max_seq * kvd, self.lens[slot] * kvd);
        let c = &self.cache[layer];
        (&c.k[base..base + n], &c.v[base..base + n])
    }

    /// KV cache bytes per token of the cache this backend simulates (quantized dtype, or f32).
    pub fn kv_bytes_per_token(&self) -> f64 {
        let c = &self.w.config;
        match &self.quant.kv {
            Some(k) if k.dtype.quantized() => crate::quant::kv::bytes_per_token(
                c.num_hidden_layers,
                c.num_key_value_heads,
                c.head_dim,
                k.dtype,
                k.mode,
                4,
            ),
            _ => (2 * c.num_hidden_layers * c.kv_dim() * 4) as f64,
        }
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }
    fn config(&self) -> &LlamaConfig {
        &self.w.config
    }
    fn max_batch(&self) -> usize {
        self.max_batch
    }
    fn max_seq(&self) -> usize {
        self.max_seq
    }
    fn seq_len(&self, slot: usize) -> usize {
        self.lens.get(slot).copied().unwrap_or(0)
    }
    fn reset(&mut self, slot: usize) {
        if let Some(l) = self.lens.get_mut(slot) {
            *l = 0;
        }
    }

    fn memory(&self) -> super::MemoryStats {
        // The cache a kernel would hold: f32 here, or the quantized dtype this backend simulates.
        let per_token = self.kv_bytes_per_token();
        super::MemoryStats {
            weights_bytes: self.w.config.param_count() as u64 * 4,
            kv_cache_bytes: (per_token * (self.max_batch * self.max_seq) as f64) as u64,
            kv_bytes_per_token: Some(per_token),
            ..Default::default()
        }
    }

    fn forward(&mut self, chunks: &[SeqChunk], want: Logits) -> Result<LogitsOut> {
        self.forward_observed(chunks, want, None)
    }
}

/// Sees the input of every linear layer during a forward pass: `(weight, x (T, in) row-major, in)`;
/// for a linear with an fp8 input scale, the fake-quantized input it multiplies.
/// Calibration (src/convert/calibrate.rs) collects activation statistics through it.
pub type LinearObserver<'o> = dyn FnMut(Param, &[f32], usize) + 'o;

impl CpuBackend {
    /// [`Backend::forward`] that also shows each linear layer's input to `observer`.
    pub fn forward_observed(
        &mut self,
        chunks: &[SeqChunk],
        want: Logits,
        observer: Option<&mut LinearObserver<'_>>,
    ) -> Result<LogitsOut> {
        check_chunks(self, chunks)?;
        let mut seqs = Vec::with_capacity(chunks.len());
        let mut tokens = Vec::new();
        let mut positions = Vec::new();
        let mut out_rows = Vec::new();
        for c in chunks {
            let start = self.lens[c.slot];
            let row0 = tokens.len();
            seqs.push(SeqRange { slot: c.slot, start, row0, n: c.tokens.len() });
            tokens.extend_from_slice(c.tokens);
            positions.extend(start..start + c.tokens.len());
            match want {
                Logits::Last => out_rows.push(row0 + c.tokens.len() - 1),
                Logits::All => out_rows.extend(row0..row0 + c.tokens.len()),
            }
        }
        let w = Arc::clone(&self.w);
        let mut pass = CpuPass {
            w: &w,
            quant: &self.quant,
            kv_amax: &mut self.kv_amax,
            cache: &mut self.cache,
            max_seq: self.max_seq,
            rope_cos: &self.rope_cos,
            rope_sin: &self.rope_sin,
            seqs: &seqs,
            tokens: &tokens,
            positions: &positions,
            out_rows: &out_rows,
            observer,
        };
        let logits = forward(&w.config, &mut pass)?;
        for s in &seqs {
            self.lens[s.slot] = s.start + s.n;
        }
        Ok(LogitsOut { vocab: w.config.vocab_size, data: logits.data })
    }
}

/// Where one sequence's new tokens sit in the batch.
struct SeqRange {
    slot: usize,
    start: usize, // tokens already cached
    row0: usize,  // first row in the (T, ·) activations
    n: usize,
}

/// Row-major activations (rows, cols), shared with the paged CPU backend.
pub(super) struct Act {
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) data: Vec<f32>,
}

struct CpuPass<'a, 'o> {
    w: &'a ModelWeights,
    quant: &'a CpuQuant,
    kv_amax: &'a mut [(Vec<f32>, Vec<f32>)],
    cache: &'a mut [LayerCache],
    max_seq: usize,
    rope_cos: &'a [f32],
    rope_sin: &'a [f32],
    seqs: &'a [SeqRange],
    tokens: &'a [u32],      // (T)
    positions: &'a [usize], // (T)
    out_rows: &'a [usize],  // (T')
    observer: Option<&'a mut LinearObserver<'o>>,
}

impl LlamaOps for CpuPass<'_, '_> {
    type T = Act;

    fn embed(&mut self) -> Result<Act> {
        Ok(embed_rows(self.w, self.tokens))
    }

    fn rms_norm(&mut self, x: &Act, w: Param) -> Result<Act> {
        Ok(rms_norm_rows(x, &self.w.get(w).data, self.w.config.rms_norm_eps))
    }

    fn linear(&mut self, x: &Act, w: Param) -> Result<Act> {
        let wt = self.w.get(w);
        let rounded;
        let x = if self.quant.f16_inputs {
            rounded =
                Act { rows: x.rows, cols: x.cols, data: x.data.iter().map(|&v| f16::from_f32(v).to_f32()).collect() };
            &rounded
        } else {
            x
        };
        let rows_fp8 = self.quant.fp8_rows.as_ref().is_some_and(|f| x.rows > f.above && f.params.contains(&w));
        if rows_fp8 && !self.quant.input_scales.contains_key(&w) {
            let mut xq = Act { rows: x.rows, cols: x.cols, data: x.data.clone() };
            fp8::fake_quant_rows(&mut xq.data, xq.cols);
            if let Some(obs) = self.observer.as_mut() {
                obs(w, &xq.data, xq.cols);
            }
            return Ok(matmul_t(&xq, wt));
        }
        if let Some(s) = self.quant.input_scales.get(&w) {
            let mut xq = Act { rows: x.rows, cols: x.cols, data: x.data.clone() };
            fp8::fake_quant_slice(&mut xq.data, *s);
            // The observer sees what the linear multiplies: the fp8-rounded input.
            if let Some(obs) = self.observer.as_mut() {
                obs(w, &xq.data, xq.cols);
            }
            return Ok(matmul_t(&xq, wt));
        }
        if let Some(obs) = self.observer.as_mut() {
            obs(w, &x.data, x.cols);
        }
        Ok(matmul_t(x, wt))
    }

    fn rope(&mut self, x: &Act, n_heads: usize) -> Result<Act> {
        Ok(rope_rows(x, n_heads, self.positions, self.rope_cos, self.rope_sin))
    }

    fn attention(&mut self, layer: usize, q: &Act, k: &Act, v: &Act) -> Result<Act> {
        let c = &self.w.config;
        let (hd, nh, nkv) = (c.head_dim, c.num_attention_heads, c.num_key_value_heads);
        let kvd = nkv * hd;
        let group = nh / nkv;
        let cache = &mut self.cache[layer];
        // Append the new keys/values: cache (max_batch, max_seq, kv_dim).
        for s in self.seqs {
            let base = (s.slot * self.max_seq + s.start) * kvd;
            let src = s.row0 * kvd..(s.row0 + s.n) * kvd;
            cache.k[base..base + s.n * kvd].copy_from_slice(&k.data[src.clone()]);
            cache.v[base..base + s.n * kvd].copy_from_slice(&v.data[src]);
            if let Some(kq) = self.quant.kv.as_ref().filter(|k| k.dtype.quantized()) {
                let row0 = s.slot * self.max_seq;
                let nb = self.max_seq.div_ceil(KV_BLOCK);
                if let Some(m) = kq.k_mean_of(layer, kvd) {
                    // K smoothing: the cache holds k − mean (quantized below), never added back.
                    subtract_mean(&mut cache.k[base..base + s.n * kvd], m);
                }
                let rot = kq.rotate.as_ref().filter(|_| kq.mode == KvScaleMode::Calibrated && kq.scales.is_some());
                if let Some(r) = rot {
                    r.rotate(layer, &mut cache.k[base..base + s.n * kvd]);
                }
                for (is_v, buf) in [(false, &mut cache.k), (true, &mut cache.v)] {
                    let seq = &mut buf[row0 * kvd..(row0 + self.max_seq) * kvd]; // (max_seq, kv_dim)
                    match kq.mode {
                        KvScaleMode::Calibrated => {
                            let sc = kq.scales.as_ref().map(|t| if is_v { &t.v[layer] } else { &t.k[layer] });
                            let Some(sc) = sc else { continue };
                            quantize_rows_static(&mut seq[s.start * kvd..(s.start + s.n) * kvd], sc, hd, kq.dtype);
                            if let (Some(r), false) = (rot, is_v) {
                                r.unrotate(layer, &mut seq[s.start * kvd..(s.start + s.n) * kvd]);
                            }
                        }
                        KvScaleMode::Dynamic => {
                            let (ka, va) = &mut self.kv_amax[layer];
                            let amax = if is_v { va } else { ka };
                            let amax = &mut amax[s.slot * nb * nkv..(s.slot + 1) * nb * nkv]; // (blocks, kv_heads)
                            quantize_rows_dynamic(seq, amax, s.start, s.n, nkv, hd, kq.dtype);
                        }
                    }
                }
            }
        }
        let (kc, vc) = (&cache.k, &cache.v);
        let scale = 1.0 / (hd as f32).sqrt();
        let qd = nh * hd;
        let qv = ArrayView2::from_shape((q.rows, qd), &q.data).map_err(internal)?;
        // One task per (sequence, head): scores = q_h · K_hᵀ, causal mask, softmax, · V_h.
        let tasks: Vec<(usize, usize)> = (0..self.seqs.len()).flat_map(|si| (0..nh).map(move |h| (si, h))).collect();
        let max_seq = self.max_seq;
        let heads: Vec<Result<ndarray::Array2<f32>>> = tasks
            .par_iter()
            .map(|&(si, h)| {
                let s = &self.seqs[si];
                let total = s.start + s.n;
                let kvh = h / group;
                let base = s.slot * max_seq * kvd;
                let kview = ArrayView2::from_shape((total, kvd), &kc[base..base + total * kvd]).map_err(internal)?;
                let vview = ArrayView2::from_shape((total, kvd), &vc[base..base + total * kvd]).map_err(internal)?;
                let kh = kview.slice(s![.., kvh * hd..(kvh + 1) * hd]); // (total, hd)
                let vh = vview.slice(s![.., kvh * hd..(kvh + 1) * hd]); // (total, hd)
                let qh = qv.slice(s![s.row0..s.row0 + s.n, h * hd..(h + 1) * hd]); // (n, hd)
                let mut scores = qh.dot(&kh.t()); // (n, total), standard layout (an owned product)
                let rows = scores
                    .as_slice_mut()
                    .ok_or_else(|| Error::Invalid("internal: attention scores not contiguous".into()))?;
                for (i, row) in rows.chunks_exact_mut(total).enumerate() {
                    let valid = s.start + i + 1; // attends to positions 0..valid
                    row[..valid].iter_mut().for_each(|x| *x *= scale);
                    softmax_prefix(row, valid);
                }
                Ok(scores.dot(&vh)) // (n, hd)
            })
            .collect();
        let mut out = vec![0.0; q.rows * qd];
        for (&(si, h), r) in tasks.iter().zip(heads) {
            let r = r?;
            let s = &self.seqs[si];
            for (i, row) in r.axis_iter(Axis(0)).enumerate() {
                let o = (s.row0 + i) * qd + h * hd;
                for (d, x) in out[o..o + hd].iter_mut().zip(row.iter()) {
                    *d = *x;
                }
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

impl KvQuant {
    /// A `dtype` cache with static per-head scales calibrated on `prompts` by the f32 reference on
    /// `w`: each (layer, K|V, kv head)'s absmax over the prompts' cached keys (after RoPE) and
    /// values, `amax / qmax` rounded to f16 (`quant::kv::KvAmax::scales`, what `convert` stores).
    /// Used where no engine dir supplies scales (`--model` runs of bench / serve / cuda-check).
    pub fn calibrate(w: Arc<ModelWeights>, dtype: KvCacheDtype, prompts: &[Vec<u32>]) -> Result<KvQuant> {
        Self::calibrate_with(w, dtype, prompts, None, false)
    }

    /// [`KvQuant::calibrate`] with K centred and rotated when `rotate` (the recipe a config's
    /// `kv_rotate` gives, [`crate::quant::kv::KvRotation::for_model`]; `kv_smooth_k` follows it).
    pub fn calibrate_recipe(
        w: Arc<ModelWeights>,
        dtype: KvCacheDtype,
        prompts: &[Vec<u32>],
        rotate: bool,
    ) -> Result<KvQuant> {
        let rot =
            rotate.then(|| crate::quant::kv::KvRotation::for_model(&w.config)).transpose().map_err(Error::Invalid)?;
        Self::calibrate_with(w, dtype, prompts, rot, rotate)
    }

    /// [`KvQuant::calibrate`] for a cache whose K is rotated by `rotate` and/or centred by its mean
    /// over the prompts (`smooth`, K smoothing): K's scales cover the K the cache rounds
    /// (`KvAmax::scales_rotated` / `KvAmax::scales` with the mean).
    pub fn calibrate_with(
        w: Arc<ModelWeights>,
        dtype: KvCacheDtype,
        prompts: &[Vec<u32>],
        rotate: Option<crate::quant::kv::KvRotation>,
        smooth: bool,
    ) -> Result<KvQuant> {
        let c = w.config.clone();
        let max_seq = prompts.iter().map(|p| p.len()).max().unwrap_or(1).max(1);
        let mut cpu = CpuBackend::new(w, prompts.len().max(1), max_seq)?;
        let chunks: Vec<SeqChunk> = prompts.iter().enumerate().map(|(slot, t)| SeqChunk { slot, tokens: t }).collect();
        cpu.forward(&chunks, Logits::Last)?;
        let mut amax = crate::quant::kv::KvAmax::new(c.num_hidden_layers, c.num_key_value_heads);
        for layer in 0..c.num_hidden_layers {
            for slot in 0..prompts.len() {
                let (k, v) = cpu.cached_kv(layer, slot);
                amax.update(layer, false, k, c.head_dim);
                amax.update(layer, true, v, c.head_dim);
                if let Some(r) = &rotate {
                    amax.update_rotated_k(layer, k, c.head_dim, r);
                }
            }
        }
        let k_mean = smooth.then(|| amax.k_mean());
        let scales = match &rotate {
            Some(r) => amax.scales_rotated(dtype, k_mean.as_deref(), r),
            None => amax.scales(dtype, k_mean.as_deref()),
        };
        Ok(KvQuant { dtype, mode: KvScaleMode::Calibrated, scales: Some(scales), k_mean, rotate })
    }
}

/// Rounds new cache rows `(n, kv_heads · hd)` to the cache dtype with one static scale per head.
fn quantize_rows_static(rows: &mut [f32], scales: &[f32], hd: usize, dtype: KvCacheDtype) {
    for row in rows.chunks_mut(scales.len() * hd) {
        for (h, head) in row.chunks_mut(hd).enumerate() {
            head.iter_mut().for_each(|x| *x = dtype.qdq(*x, scales[h]));
        }
    }
}

/// Writes rows `start..start+n` of one sequence's cache `seq (max_seq, kv_heads · hd)` at the cache
/// dtype with dynamic per-(block, head) scales; `amax (blocks, kv_heads)` holds each block's running
/// absmax. A block whose absmax grows has its earlier rows re-quantized from their stored values.
fn quantize_rows_dynamic(
    seq: &mut [f32],
    amax: &mut [f32],
    start: usize,
    n: usize,
    nkv: usize,
    hd: usize,
    dtype: KvCacheDtype,
) {
    let kvd = nkv * hd;
    let end = start + n;
    for b in start / KV_BLOCK..end.div_ceil(KV_BLOCK) {
        let (b0, b1) = (b * KV_BLOCK, ((b + 1) * KV_BLOCK).min(end));
        let new0 = start.max(b0);
        for h in 0..nkv {
            let old = if b0 < start { amax[b * nkv + h] } else { 0.0 };
            let mut m = old;
            for r in new0..b1 {
                m = seq[r * kvd + h * hd..r * kvd + (h + 1) * hd].iter().fold(m, |a, v| a.max(v.abs()));
            }
            amax[b * nkv + h] = m;
            let sc = dtype.scale_for(m);
            // Earlier rows of the block: re-quantize only if the scale changed.
            let first = if m > old { b0 } else { new0 };
            for r in first..b1 {
                seq[r * kvd + h * hd..r * kvd + (h + 1) * hd].iter_mut().for_each(|x| *x = dtype.qdq(*x, sc));
            }
        }
    }
}

fn internal(e: ndarray::ShapeError) -> Error {
    Error::Invalid(format!("internal shape error: {e}"))
}

/// `x · Wᵀ`: x (t, k), W (n, k) → (t, n).
fn matmul_t(x: &Act, w: &Tensor) -> Act {
    let (t, k) = (x.rows, x.cols);
    let n = w.rows();
    debug_assert_eq!(w.cols(), k);
    let mut y = vec![0.0f32; t * n];
    if t <= GEMV_MAX_ROWS {
        // Decode: every weight row is streamed once and dotted with each input row.
        let mut yt = vec![0.0f32; n * t]; // (n, t)
        yt.par_chunks_mut(t * GEMV_ROWS_PER_TASK).enumerate().for_each(|(ci, out)| {
            for (j, o) in out.chunks_mut(t).enumerate() {
                let wr = w.row(ci * GEMV_ROWS_PER_TASK + j);
                for (i, o) in o.iter_mut().enumerate() {
                    *o = dot(&x.data[i * k..(i + 1) * k], wr);
                }
            }
        });
        for r in 0..n {
            for i in 0..t {
                y[i * n + r] = yt[r * t + i];
            }
        }
    } else {
        // Prefill: blocked GEMM, output columns split across threads.
        let xa = ArrayView2::from_shape((t, k), &x.data).expect("activation shape"); // invariant of Act
        let wa = ArrayView2::from_shape((n, k), &w.data).expect("weight shape"); // checked at load
        let mut ya = ArrayViewMut2::from_shape((t, n), &mut y).expect("output shape");
        let nt = rayon::current_num_threads().max(1);
        let block = n.div_ceil(nt * 4).div_ceil(16) * 16;
        let blocks: Vec<(usize, ArrayViewMut2<f32>)> = ya.axis_chunks_iter_mut(Axis(1), block).enumerate().collect();
        blocks.into_par_iter().for_each(|(bi, mut yb)| {
            let c0 = bi * block;
            let wb = wa.slice(s![c0..c0 + yb.ncols(), ..]);
            general_mat_mul(1.0, &xa, &wb.t(), 0.0, &mut yb);
        });
    }
    Act { rows: t, cols: n, data: y }
}

/// Dot product with independent accumulators so the compiler vectorizes it.
#[inline]
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    const L: usize = 16;
    let mut acc = [0.0f32; L];
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..L {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

// The element-wise ops of a Llama pass, shared by the contiguous ([`CpuBackend`]) and paged
// (`paged::CpuPagedBackend`) CPU backends: both differ only in their linear layers and KV caches.

/// Causal softmax of one row of scores, in place: positions `..valid` become their probabilities (the maximum,
/// the exponentials and their sum in position order), the rest exact zeros. A row's result depends on its own
/// scores only, which is what keeps the paged backend's rows independent of the batch.
pub(super) fn softmax_prefix(row: &mut [f32], valid: usize) {
    let (row, masked) = row.split_at_mut(valid);
    let mx = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let mut sum = 0.0f32;
    for x in row.iter_mut() {
        *x = (*x - mx).exp();
        sum += *x;
    }
    row.iter_mut().for_each(|x| *x /= sum);
    masked.fill(0.0);
}

/// The embedding rows of `tokens`.
pub(super) fn embed_rows(w: &ModelWeights, tokens: &[u32]) -> Act {
    let e = &w.embed; // (vocab, hidden)
    let cols = e.cols();
    let mut data = Vec::with_capacity(tokens.len() * cols);
    for &t in tokens {
        data.extend_from_slice(e.row(t as usize));
    }
    Act { rows: tokens.len(), cols, data }
}

/// RMSNorm of every row with gain `g`.
pub(super) fn rms_norm_rows(x: &Act, g: &[f32], eps: f32) -> Act {
    let mut out = vec![0.0; x.data.len()];
    out.par_chunks_mut(x.cols.max(1)).zip(x.data.par_chunks(x.cols.max(1))).for_each(|(o, xr)| {
        let ms = xr.iter().map(|v| v * v).sum::<f32>() / xr.len() as f32;
        let inv = 1.0 / (ms + eps).sqrt();
        for ((o, v), g) in o.iter_mut().zip(xr).zip(g) {
            *o = v * inv * g;
        }
    });
    Act { rows: x.rows, cols: x.cols, data: out }
}

/// Rotate-half RoPE of every head of row r at `positions[r]`; `cos`/`sin` are (positions, head_dim / 2).
pub(super) fn rope_rows(x: &Act, n_heads: usize, positions: &[usize], cos: &[f32], sin: &[f32]) -> Act {
    let hd = x.cols / n_heads;
    let half = hd / 2;
    let mut out = x.data.clone();
    for (r, row) in out.chunks_mut(x.cols).enumerate() {
        let p = positions[r];
        let cos = &cos[p * half..(p + 1) * half];
        let sin = &sin[p * half..(p + 1) * half];
        for head in row.chunks_mut(hd) {
            let (a, b) = head.split_at_mut(half);
            for i in 0..half {
                let (x1, x2) = (a[i], b[i]);
                a[i] = x1 * cos[i] - x2 * sin[i];
                b[i] = x2 * cos[i] + x1 * sin[i];
            }
        }
    }
    Act { rows: x.rows, cols: x.cols, data: out }
}

/// silu(gate) · up.
pub(super) fn swiglu_rows(gate: &Act, up: &Act) -> Act {
    let data = gate.data.iter().zip(&up.data).map(|(g, u)| g / (1.0 + (-g).exp()) * u).collect();
    Act { rows: gate.rows, cols: gate.cols, data }
}

pub(super) fn add_rows(a: &Act, b: &Act) -> Act {
    let data = a.data.iter().zip(&b.data).map(|(x, y)| x + y).collect();
    Act { rows: a.rows, cols: a.cols, data }
}

/// The rows `rows` of `x`, in that order.
pub(super) fn select_rows(x: &Act, rows: &[usize]) -> Act {
    if rows.len() == x.rows && rows.iter().enumerate().all(|(i, &r)| i == r) {
        return Act { rows: x.rows, cols: x.cols, data: x.data.clone() };
    }
    let mut data = Vec::with_capacity(rows.len() * x.cols);
    for &r in rows {
        data.extend_from_slice(&x.data[r * x.cols..(r + 1) * x.cols]);
    }
    Act { rows: rows.len(), cols: x.cols, data }
}

/// `n` zeros, or an error (classified as out of memory by bench) when the allocation fails.
fn zeroed(n: usize, max_batch: usize, max_seq: usize) -> Result<Vec<f32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        Error::Invalid(format!(
            "cannot allocate the KV cache for batch {max_batch} × {max_seq} tokens ({:.1} GB per layer and K/V); \
lower the batch size or sequence length",
            n as f64 * 4.0 / 1e9
        ))
    })?;
    v.resize(n, 0.0);
    Ok(v)
}
