//! Quantized KV cache formats: what one cached key/value element becomes when it is written, and how
//! many bytes a token costs. Pure arithmetic; the CPU reference backend applies it on every cache write
//! (it keeps the dequantized values, so attention reads exactly what a kernel that dequantizes on
//! load would see).
//!
//! Scales are per KV head (`head_dim` elements of one token share a head's scale), either
//! - [`KvScaleMode::Calibrated`]: one static scale per (layer, K|V, head) from the calibration pass
//!   (`amax / qmax`), stored in the engine; values beyond it saturate; or
//! - [`KvScaleMode::Dynamic`]: one scale per (sequence, [`KV_BLOCK`]-token block, layer, K|V, head),
//!   the block's running absmax. When a token raises a block's absmax, the block's earlier tokens are
//!   re-quantized from their stored (already rounded) values, as a kernel holding only the 8-bit
//!   block would have to.
//!
//! K smoothing ([`KvAmax::k_mean`], `quantization.kv_smooth_k`): before K is quantized, the calibrated
//! mean of post-RoPE K per (layer, kv head, channel) is subtracted, and attention reads the dequantized
//! `k − mean` as it is (no add-back). Exact algebra: a query's scores over the keys of one head all
//! shift by the same `q · mean`, which softmax ignores; only the quantization error changes (the
//! per-channel offset no longer takes up the grid). SageAttention's "smooth K".
//!
//! K rotation ([`KvRotation`], `quantization.kv_rotate`): before K is quantized, each head's
//! post-RoPE key is rotated by a randomized Walsh–Hadamard matrix `R = diag(s) · H / √d` (random
//! signs `s` per layer from a stored seed, `H` the Sylvester Hadamard matrix of the head dim); the
//! query would be rotated by the same `R` (orthogonal, so `(qR)·(kR) = q·k`). The rotation spreads a
//! few outlier channels over the whole head, so the per-head scale fits the bulk of the values
//! (QuaRot's trick, for K only). The reference backends keep the cache un-rotated — they store
//! `Q(kR) · Rᵀ`, which gives the same scores as rotating q — so attention is unchanged.
use super::fp8;
use half::f16;
use serde::{Deserialize, Serialize};

/// Tokens per dynamic-scale block (the paged cache's block size, COORD.md).
pub const KV_BLOCK: usize = 16;

/// Element type of the KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum KvCacheDtype {
    /// The engine's float type (fp32 engines keep an fp32 cache).
    #[default]
    Fp16,
    /// FP8 E4M3FN with per-head scales.
    Fp8,
    /// INT8 symmetric with per-head scales.
    Int8,
}

/// Where the per-head scales come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum KvScaleMode {
    #[default]
    Calibrated,
    Dynamic,
}

impl KvCacheDtype {
    pub fn as_str(self) -> &'static str {
        match self {
            KvCacheDtype::Fp16 => "fp16",
            KvCacheDtype::Fp8 => "fp8",
            KvCacheDtype::Int8 => "int8",
        }
    }
    pub fn quantized(self) -> bool {
        self != KvCacheDtype::Fp16
    }
    /// Bytes of one cached element (fp16: 2; the fp32 engines' cache is not this type).
    pub fn elem_bytes(self) -> usize {
        match self {
            KvCacheDtype::Fp16 => 2,
            KvCacheDtype::Fp8 | KvCacheDtype::Int8 => 1,
        }
    }
    /// The largest code magnitude a scale maps the absmax onto.
    pub fn qmax(self) -> f32 {
        match self {
            KvCacheDtype::Fp16 => 1.0,
            KvCacheDtype::Fp8 => fp8::E4M3_MAX,
            KvCacheDtype::Int8 => 127.0,
        }
    }
    /// The scale for a head whose values reach `amax` (never 0).
    pub fn scale_for(self, amax: f32) -> f32 {
        let s = amax / self.qmax();
        if s > 0.0 && s.is_finite() {
            s
        } else {
            f32::MIN_POSITIVE
        }
    }
    /// The value the cache holds for `x` under `scale`, dequantized to f16 as the attention kernel
    /// reads it: fp16 `f16(x)`; fp8 `f16(decode(encode(x / s)) · s)`; int8
    /// `f16(clamp(round(x / s), −128, 127) · s)` (ties to even, as ONNX QuantizeLinear rounds).
    #[inline]
    pub fn qdq(self, x: f32, scale: f32) -> f32 {
        match self {
            KvCacheDtype::Fp16 => f16::from_f32(x).to_f32(),
            KvCacheDtype::Fp8 => fp8::fake_quant(x, scale),
            KvCacheDtype::Int8 => f16::from_f32((x / scale).round_ties_even().clamp(-128.0, 127.0) * scale).to_f32(),
        }
    }
}

/// KV cache bytes per token of a model: K and V of every layer, plus the scales (f32) amortized:
/// per block of [`KV_BLOCK`] tokens for dynamic scales; the static ones are not per token.
pub fn bytes_per_token(
    layers: usize,
    kv_heads: usize,
    head_dim: usize,
    dtype: KvCacheDtype,
    mode: KvScaleMode,
    float_bytes: usize,
) -> f64 {
    let elems = (2 * layers * kv_heads * head_dim) as f64;
    match dtype {
        KvCacheDtype::Fp16 => elems * float_bytes as f64,
        _ => {
            let scales = match mode {
                KvScaleMode::Calibrated => 0.0,
                KvScaleMode::Dynamic => (2 * layers * kv_heads * 4) as f64 / KV_BLOCK as f64,
            };
            elems * dtype.elem_bytes() as f64 + scales
        }
    }
}

/// Static per-head scales of a model's KV cache: `k[layer][head]`, `v[layer][head]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvScales {
    pub k: Vec<Vec<f32>>,
    pub v: Vec<Vec<f32>>,
}

/// Per-head absmax of K and V over calibration data; [`KvAmax::scales`] turns it into scales. For K
/// it also keeps per (layer, channel) the sum, min and max, so the mean ([`KvAmax::k_mean`]) and the
/// absmax of the centred K (`max(max − m, m − min)` per channel) come from the same single pass.
#[derive(Debug, Clone, Default)]
pub struct KvAmax {
    pub k: Vec<Vec<f32>>, // (layers, kv_heads)
    pub v: Vec<Vec<f32>>,
    /// K per (layer, channel of kv_heads · head_dim): sum (f64), min, max; and the rows seen per layer.
    k_sum: Vec<Vec<f64>>,
    k_min: Vec<Vec<f32>>,
    k_max: Vec<Vec<f32>>,
    k_rows: Vec<usize>,
    /// K rotated by a [`KvRotation`] ([`KvAmax::update_rotated_k`]) per (layer, channel): min and max
    /// (the rotated K's absmax, centred or not, follows from them: [`KvAmax::k_rot_amax`]).
    k_rot_min: Vec<Vec<f32>>,
    k_rot_max: Vec<Vec<f32>>,
}

impl KvAmax {
    pub fn new(layers: usize, kv_heads: usize) -> Self {
        KvAmax {
            k: vec![vec![0.0; kv_heads]; layers],
            v: vec![vec![0.0; kv_heads]; layers],
            k_sum: vec![Vec::new(); layers],
            k_min: vec![Vec::new(); layers],
            k_max: vec![Vec::new(); layers],
            k_rows: vec![0; layers],
            k_rot_min: vec![Vec::new(); layers],
            k_rot_max: vec![Vec::new(); layers],
        }
    }
    /// Adds rows `x (tokens, kv_heads · head_dim)` of layer `layer`'s keys, rotated by `rot`, to the
    /// rotated K's per-channel min / max.
    pub fn update_rotated_k(&mut self, layer: usize, x: &[f32], head_dim: usize, rot: &KvRotation) {
        let mut r = x.to_vec();
        rot.rotate(layer, &mut r);
        let kvd = self.k[layer].len() * head_dim;
        if self.k_rot_min[layer].is_empty() {
            self.k_rot_min[layer] = vec![f32::INFINITY; kvd];
            self.k_rot_max[layer] = vec![f32::NEG_INFINITY; kvd];
        }
        let (mn, mx) = (&mut self.k_rot_min[layer], &mut self.k_rot_max[layer]);
        for row in r.chunks_exact(kvd) {
            for (c, &v) in row.iter().enumerate() {
                mn[c] = mn[c].min(v);
                mx[c] = mx[c].max(v);
            }
        }
    }
    /// Adds rows `x (tokens, kv_heads · head_dim)` of layer `layer`'s keys (`value` false) or values.
    pub fn update(&mut self, layer: usize, value: bool, x: &[f32], head_dim: usize) {
        let m = if value { &mut self.v[layer] } else { &mut self.k[layer] };
        let kvd = m.len() * head_dim;
        for row in x.chunks_exact(kvd) {
            for (h, a) in m.iter_mut().enumerate() {
                let hm = row[h * head_dim..(h + 1) * head_dim].iter().fold(0.0f32, |a, v| a.max(v.abs()));
                *a = a.max(hm);
            }
        }
        if value {
            return;
        }
        if self.k_sum[layer].is_empty() {
            self.k_sum[layer] = vec![0.0; kvd];
            self.k_min[layer] = vec![f32::INFINITY; kvd];
            self.k_max[layer] = vec![f32::NEG_INFINITY; kvd];
        }
        let (sum, mn, mx) = (&mut self.k_sum[layer], &mut self.k_min[layer], &mut self.k_max[layer]);
        for row in x.chunks_exact(kvd) {
            for (c, &v) in row.iter().enumerate() {
                sum[c] += v as f64;
                mn[c] = mn[c].min(v);
                mx[c] = mx[c].max(v);
            }
            self.k_rows[layer] += 1;
        }
    }
    /// The mean of K per (layer, kv head, channel), flat in that order, each rounded to f16 (the
    /// dtype of the ONNX constant; the engine dir stores these values as f32). Every layer must have
    /// seen K rows.
    pub fn k_mean(&self) -> Vec<f32> {
        let mut out = Vec::new();
        for (l, sum) in self.k_sum.iter().enumerate() {
            let n = self.k_rows[l].max(1) as f64;
            out.extend(sum.iter().map(|&s| f16::from_f64(s / n).to_f32()));
        }
        out
    }
    /// Per-head absmax of `K − mean` (`mean` from [`KvAmax::k_mean`]): per channel the larger of
    /// `max − m` and `m − min` over the calibration rows, then the largest channel of the head.
    pub fn k_centred_amax(&self, mean: &[f32]) -> Vec<Vec<f32>> {
        let mut off = 0;
        (0..self.k.len())
            .map(|l| {
                let kvd = self.k_max[l].len();
                off += kvd;
                head_amax(&self.k_min[l], &self.k_max[l], Some(&mean[off - kvd..off]), self.k[l].len())
            })
            .collect()
    }
    /// Per-head absmax of K rotated by `rot` ([`KvAmax::update_rotated_k`] saw the rows), or with
    /// `k_mean` of the rotated centred K `(k − mean)·R = k·R − mean·R` (per channel the larger of
    /// `max − m` and `m − min` of the rotated rows, `m` the rotated mean).
    pub fn k_rot_amax(&self, k_mean: Option<&[f32]>, rot: &KvRotation) -> Vec<Vec<f32>> {
        (0..self.k.len())
            .map(|l| {
                let kvd = self.k_rot_max[l].len();
                let m = k_mean.map(|mean| {
                    let mut m = mean[l * kvd..(l + 1) * kvd].to_vec();
                    rot.rotate(l, &mut m);
                    m
                });
                head_amax(&self.k_rot_min[l], &self.k_rot_max[l], m.as_deref(), self.k[l].len())
            })
            .collect()
    }
    /// Scales rounded to f16 (the dtype the ONNX initializers and kernels hold them in); with
    /// `k_mean`, K's scales cover `K − mean` (K smoothing).
    pub fn scales(&self, dtype: KvCacheDtype, k_mean: Option<&[f32]>) -> KvScales {
        let k = match k_mean {
            Some(m) => f16_scales(dtype, &self.k_centred_amax(m)),
            None => f16_scales(dtype, &self.k),
        };
        KvScales { k, v: f16_scales(dtype, &self.v) }
    }
    /// As [`KvAmax::scales`] for K rotated by `rot`: K's scales cover [`KvAmax::k_rot_amax`].
    pub fn scales_rotated(&self, dtype: KvCacheDtype, k_mean: Option<&[f32]>, rot: &KvRotation) -> KvScales {
        KvScales { k: f16_scales(dtype, &self.k_rot_amax(k_mean, rot)), v: f16_scales(dtype, &self.v) }
    }
}

/// Per head (`heads` equal runs of channels), the largest `|x − m|` over the rows whose per-channel
/// `min` / `max` these are: per channel `max(max − m, m − min)` (`m` 0 without `m`: the absmax).
fn head_amax(min: &[f32], max: &[f32], m: Option<&[f32]>, heads: usize) -> Vec<f32> {
    let hd = max.len() / heads.max(1);
    let mc = |c: usize| m.map_or(0.0, |m| m[c]);
    (0..heads)
        .map(|h| (h * hd..(h + 1) * hd).map(|c| (max[c] - mc(c)).max(mc(c) - min[c])).fold(0.0f32, f32::max))
        .collect()
}

/// Per-head scales for absmaxes `amax (layers, heads)`, rounded to f16 (never 0).
fn f16_scales(dtype: KvCacheDtype, amax: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let s16 = |a: f32| {
        let s = f16::from_f32(dtype.scale_for(a));
        if s.to_f32() > 0.0 && s.is_finite() {
            s.to_f32()
        } else {
            f16::from_bits(1).to_f32()
        }
    };
    amax.iter().map(|l| l.iter().map(|&a| s16(a)).collect()).collect()
}

/// The K means of a smoothed cache, as an engine dir stores them: f32, row-major
/// (layers, kv_heads, head_dim) — [`K_MEAN_FILE`], little-endian, no header.
pub const K_MEAN_FILE: &str = "kv_k_mean.bin";

/// Subtracts the K means of one layer (`mean (kv_heads · head_dim)`) from rows `(n, kv_heads · head_dim)`.
#[inline]
pub fn subtract_mean(rows: &mut [f32], mean: &[f32]) {
    for row in rows.chunks_exact_mut(mean.len()) {
        row.iter_mut().zip(mean).for_each(|(x, m)| *x -= m);
    }
}

/// Reads [`K_MEAN_FILE`]'s bytes: `layers · kv_dim` little-endian f32.
pub fn k_mean_from_bytes(bytes: &[u8], layers: usize, kv_dim: usize) -> Option<Vec<f32>> {
    (bytes.len() == layers * kv_dim * 4)
        .then(|| bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// [`K_MEAN_FILE`]'s bytes for `mean`.
pub fn k_mean_to_bytes(mean: &[f32]) -> Vec<u8> {
    mean.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// `quantization.kv_rotate`'s seed when a config leaves it out (any fixed seed does: docs/quantization.md).
pub const KV_ROTATE_SEED: u64 = 16;

/// The suffix naming what is done to K before it is rounded: ", smooth + rotated K", ", smooth K",
/// ", rotated K" or "" (the engine and serve reports' KV format).
pub fn k_form_label(smooth: bool, rotated: bool) -> &'static str {
    match (smooth, rotated) {
        (true, true) => ", smooth + rotated K",
        (true, false) => ", smooth K",
        (false, true) => ", rotated K",
        (false, false) => "",
    }
}

/// The randomized Hadamard rotation of an 8-bit cache's K (see the module docs): per layer a sign
/// vector of `head_dim` ±1 drawn from [`SplitMix64`](crate::util::SplitMix64)`(seed)` in (layer,
/// channel) order, a sign −1 where the draw's top bit is set.
#[derive(Debug, Clone, PartialEq)]
pub struct KvRotation {
    pub seed: u64,
    head_dim: usize,
    signs: Vec<f32>, // (layers, head_dim)
}

impl KvRotation {
    /// An error unless `head_dim` is a power of two (the Walsh–Hadamard transform's size).
    pub fn new(seed: u64, layers: usize, head_dim: usize) -> Result<Self, String> {
        if head_dim < 2 || !head_dim.is_power_of_two() {
            return Err(format!(
                "a K rotation (kv_rotate) needs a power-of-two head_dim (a Walsh-Hadamard transform); this model's is \
                 {head_dim}"
            ));
        }
        let mut rng = crate::util::SplitMix64(seed);
        let signs = (0..layers * head_dim).map(|_| if rng.next_u64() >> 63 == 1 { -1.0 } else { 1.0 }).collect();
        Ok(KvRotation { seed, head_dim, signs })
    }
    /// The rotation every engine uses for a model (seed [`KV_ROTATE_SEED`]).
    pub fn for_model(c: &crate::model::LlamaConfig) -> Result<Self, String> {
        Self::new(KV_ROTATE_SEED, c.num_hidden_layers, c.head_dim)
    }
    pub fn layers(&self) -> usize {
        self.signs.len() / self.head_dim
    }
    pub fn head_dim(&self) -> usize {
        self.head_dim
    }
    /// Why this rotation does not fit a model of `layers` layers × `head_dim`; None when it does.
    pub fn mismatch(&self, layers: usize, head_dim: usize) -> Option<String> {
        (self.layers() != layers || self.head_dim != head_dim).then(|| {
            format!(
                "K rotation of {} layers × head_dim {} for a model of {layers} layers × head_dim {head_dim}",
                self.layers(),
                self.head_dim
            )
        })
    }
    /// Layer `layer`'s signs (head_dim).
    pub fn signs(&self, layer: usize) -> &[f32] {
        &self.signs[layer * self.head_dim..(layer + 1) * self.head_dim]
    }
    /// `x ← x · R` for every head of rows `(n, heads · head_dim)` of layer `layer`.
    pub fn rotate(&self, layer: usize, rows: &mut [f32]) {
        let (s, norm) = (self.signs(layer), 1.0 / (self.head_dim as f32).sqrt());
        for head in rows.chunks_exact_mut(self.head_dim) {
            head.iter_mut().zip(s).for_each(|(x, s)| *x *= s);
            fwht(head);
            head.iter_mut().for_each(|x| *x *= norm);
        }
    }
    /// `x ← x · Rᵀ` (the inverse of [`KvRotation::rotate`]).
    pub fn unrotate(&self, layer: usize, rows: &mut [f32]) {
        let (s, norm) = (self.signs(layer), 1.0 / (self.head_dim as f32).sqrt());
        for head in rows.chunks_exact_mut(self.head_dim) {
            fwht(head);
            head.iter_mut().zip(s).for_each(|(x, s)| *x *= s * norm);
        }
    }
    /// `R` of layer `layer`, row-major (head_dim, head_dim): `R[i][j] = s_i · (−1)^popcount(i & j) / √d`,
    /// so a row vector times it is [`KvRotation::rotate`].
    pub fn matrix(&self, layer: usize) -> Vec<f32> {
        let (d, s) = (self.head_dim, self.signs(layer));
        let norm = 1.0 / (d as f32).sqrt();
        (0..d * d)
            .map(|ij| {
                let (i, j) = (ij / d, ij % d);
                let h = if (i & j).count_ones() % 2 == 0 { 1.0 } else { -1.0 };
                s[i] * h * norm
            })
            .collect()
    }
}

/// In-place unnormalized Walsh–Hadamard transform (Sylvester order) of a power-of-two slice.
fn fwht(x: &mut [f32]) {
    let n = x.len();
    let mut h = 1;
    while h < n {
        for i in (0..n).step_by(2 * h) {
            for j in i..i + h {
                let (a, b) = (x[j], x[j + h]);
                x[j] = a + b;
                x[j + h] = a - b;
            }
        }
        h *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_matches_its_matrix_and_inverts() {
        // Golden values from an independent construction: numpy-free, the explicit matrix product.
        let r = KvRotation::new(7, 2, 8).unwrap();
        assert!(KvRotation::new(7, 2, 12).is_err(), "head_dim must be a power of two");
        let row: Vec<f32> = (0..16).map(|i| (i as f32 * 0.37).sin() * 3.0 + 0.1 * i as f32).collect();
        for layer in 0..2 {
            let m = r.matrix(layer);
            let mut got = row.clone();
            r.rotate(layer, &mut got);
            for h in 0..2 {
                for j in 0..8 {
                    let want: f32 = (0..8).map(|i| row[h * 8 + i] * m[i * 8 + j]).sum();
                    assert!((got[h * 8 + j] - want).abs() < 1e-5, "layer {layer} head {h} col {j}");
                }
            }
            // Orthogonal: norms kept, and unrotate undoes rotate.
            let n0: f32 = row.iter().map(|x| x * x).sum();
            let n1: f32 = got.iter().map(|x| x * x).sum();
            assert!((n0 - n1).abs() < 1e-3 * n0);
            r.unrotate(layer, &mut got);
            row.iter().zip(&got).for_each(|(a, b)| assert!((a - b).abs() < 1e-5));
        }
        assert_ne!(r.signs(0), r.signs(1), "each layer draws its own signs");
        assert!(r.signs(0).iter().any(|&s| s < 0.0) && r.signs(0).iter().any(|&s| s > 0.0));
    }

    #[test]
    fn int8_and_fp8_bounds() {
        let s = KvCacheDtype::Int8.scale_for(2.0);
        assert_eq!(KvCacheDtype::Int8.qdq(2.0, s), f16::from_f32(2.0).to_f32());
        assert_eq!(KvCacheDtype::Int8.qdq(5.0, s), f16::from_f32(127.0 * s).to_f32()); // saturates
        let s = KvCacheDtype::Fp8.scale_for(448.0);
        assert_eq!(s, 1.0);
        assert_eq!(KvCacheDtype::Fp8.qdq(1000.0, s), 448.0);
        assert_eq!(KvCacheDtype::Fp8.qdq(1.0625, s), 1.0);
    }

    #[test]
    fn k_mean_and_centred_amax() {
        // 1 layer, 2 heads of 2 channels; rows of K.
        let mut a = KvAmax::new(1, 2);
        a.update(0, false, &[1.0, -2.0, 10.0, 0.0, 3.0, 2.0, 12.0, 4.0], 2);
        let m = a.k_mean();
        assert_eq!(m, vec![2.0, 0.0, 11.0, 2.0]);
        // Channel ranges [1, 3], [-2, 2], [10, 12], [0, 4] around those means: head 0 → 2, head 1 → 2.
        assert_eq!(a.k_centred_amax(&m), vec![vec![2.0, 2.0]]);
        assert_eq!(a.k, vec![vec![3.0, 12.0]]);
        let s = a.scales(KvCacheDtype::Int8, Some(&m));
        assert_eq!(s.k[0][1], f16::from_f32(2.0 / 127.0).to_f32());
        let mut rows = vec![1.0, -2.0, 10.0, 0.0];
        subtract_mean(&mut rows, &m);
        assert_eq!(rows, vec![-1.0, -2.0, -1.0, -2.0]);
        assert_eq!(k_mean_from_bytes(&k_mean_to_bytes(&m), 1, 4), Some(m));
    }

    #[test]
    fn bytes_per_token_smollm2() {
        // 30 layers, 3 KV heads of 64: fp16 23,040 B/token, 8-bit half of it (+ dynamic scales).
        assert_eq!(bytes_per_token(30, 3, 64, KvCacheDtype::Fp16, KvScaleMode::Calibrated, 2), 23040.0);
        assert_eq!(bytes_per_token(30, 3, 64, KvCacheDtype::Fp8, KvScaleMode::Calibrated, 2), 11520.0);
        assert_eq!(bytes_per_token(30, 3, 64, KvCacheDtype::Int8, KvScaleMode::Dynamic, 2), 11520.0 + 45.0);
    }
}
