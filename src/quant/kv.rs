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

/// Per-head absmax of K and V over calibration data; [`KvAmax::scales`] turns it into scales.
#[derive(Debug, Clone, Default)]
pub struct KvAmax {
    pub k: Vec<Vec<f32>>, // (layers, kv_heads)
    pub v: Vec<Vec<f32>>,
}

impl KvAmax {
    pub fn new(layers: usize, kv_heads: usize) -> Self {
        KvAmax { k: vec![vec![0.0; kv_heads]; layers], v: vec![vec![0.0; kv_heads]; layers] }
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
    }
    /// Scales rounded to f16 (the dtype the ONNX initializers and kernels hold them in).
    pub fn scales(&self, dtype: KvCacheDtype) -> KvScales {
        let s16 = |a: f32| {
            let s = f16::from_f32(dtype.scale_for(a));
            if s.to_f32() > 0.0 && s.is_finite() {
                s.to_f32()
            } else {
                f16::from_bits(1).to_f32()
            }
        };
        let f = |m: &Vec<Vec<f32>>| m.iter().map(|l| l.iter().map(|&a| s16(a)).collect()).collect();
        KvScales { k: f(&self.k), v: f(&self.v) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn bytes_per_token_smollm2() {
        // 30 layers, 3 KV heads of 64: fp16 23,040 B/token, 8-bit half of it (+ dynamic scales).
        assert_eq!(bytes_per_token(30, 3, 64, KvCacheDtype::Fp16, KvScaleMode::Calibrated, 2), 23040.0);
        assert_eq!(bytes_per_token(30, 3, 64, KvCacheDtype::Fp8, KvScaleMode::Calibrated, 2), 11520.0);
        assert_eq!(bytes_per_token(30, 3, 64, KvCacheDtype::Int8, KvScaleMode::Dynamic, 2), 11520.0 + 45.0);
    }
}
