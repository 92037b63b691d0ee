//! FP8 E4M3FN (OCP 8-bit floating point, the `FLOAT8E4M3FN` of ONNX and TensorRT): the codec, the
//! per-output-channel weight quantizer, static per-tensor activation scales, and the fake-quantizers
//! the CPU reference uses to run exactly what a `QuantizeLinear → DequantizeLinear` pair computes.
//!
//! E4M3FN: 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinities; NaN is `S.1111.111`;
//! largest finite ±448 (`S.1111.110`); smallest normal 2⁻⁶; subnormals `m · 2⁻⁹`, m = 1..7.
//! [`encode`] rounds to nearest, ties to even, and saturates (|x| > 448 and ±∞ → ±448, as ONNX's
//! `saturate=1` default and TensorRT do); NaN stays NaN.
//!
//! Weights: `scale[n] = f16(max|W[n]| / 448)`, `q = encode(w / scale[n])`, and the engine computes
//! `f16(decode(q) · scale[n])`. Activations: one scale per linear input, `f16(range / 448)` where
//! `range` is the calibration amax (or a percentile of |x|, see [`AbsHistogram`]).
use super::{QuantizedLinear, WeightFormat};
use crate::model::Tensor;
use half::f16;
use rayon::prelude::*;

/// Largest finite E4M3FN value.
pub const E4M3_MAX: f32 = 448.0;
/// Code of +NaN (the sign bit makes −NaN).
pub const E4M3_NAN: u8 = 0x7f;

/// f32 → E4M3FN, round to nearest even, saturating at ±448.
pub fn encode(x: f32) -> u8 {
    let sign = if x.is_sign_negative() { 0x80u8 } else { 0 };
    if x.is_nan() {
        return sign | E4M3_NAN;
    }
    let a = x.abs();
    if a >= E4M3_MAX {
        return sign | 0x7e;
    }
    // Below the smallest normal 2⁻⁶ the grid is uniform with step 2⁻⁹; the code is the step count,
    // and a count of 8 is exactly the code of 2⁻⁶ (exponent field 1, mantissa 0).
    if a < f32::powi(2.0, -6) {
        let q = (a * 512.0).round_ties_even() as u8; // exact: a scaled by a power of two
        return sign | q;
    }
    // Normal: a = m · 2^e, m in [1, 2); 3 mantissa bits.
    let e = ((a.to_bits() >> 23) & 0xff) as i32 - 127;
    let m = a / f32::powi(2.0, e); // exact
    let mut q = ((m - 1.0) * 8.0).round_ties_even() as i32; // 0..=8
    let mut e = e;
    if q == 8 {
        q = 0;
        e += 1;
    }
    // a < 448 keeps e <= 8 and excludes the NaN pattern (e = 8, q = 7 would be 480).
    sign | (((e + 7) as u8) << 3) | q as u8
}

/// E4M3FN → f32 (exact).
pub fn decode(b: u8) -> f32 {
    let sign = if b & 0x80 != 0 { -1.0f32 } else { 1.0 };
    let e = ((b >> 3) & 0x0f) as i32;
    let m = (b & 0x07) as f32;
    if e == 0x0f && b & 0x07 == 0x07 {
        return f32::NAN;
    }
    if e == 0 {
        return sign * m * f32::powi(2.0, -9);
    }
    sign * (1.0 + m / 8.0) * f32::powi(2.0, e - 7)
}

/// The 256 decoded values, indexed by code.
pub fn decode_table() -> [f32; 256] {
    let mut t = [0.0f32; 256];
    for (i, v) in t.iter_mut().enumerate() {
        *v = decode(i as u8);
    }
    t
}

/// The f16 scale that maps `range` onto ±448; never 0 (a zero range gets the smallest positive f16).
pub fn scale_for_range(range: f32) -> f16 {
    let s = f16::from_f32(range / E4M3_MAX);
    if s.to_f32() > 0.0 && s.is_finite() {
        s
    } else if s.is_finite() {
        f16::from_bits(1)
    } else {
        f16::MAX
    }
}

/// What `DequantizeLinear(QuantizeLinear(x, s), s)` with an f16 scale gives: `f16(decode(encode(x / s)) · s)`.
#[inline]
pub fn fake_quant(x: f32, scale: f32) -> f32 {
    f16::from_f32(decode(encode(x / scale)) * scale).to_f32()
}

/// Fake-quantizes a whole activation buffer in place with one scale.
pub fn fake_quant_slice(x: &mut [f32], scale: f16) {
    let s = scale.to_f32();
    x.par_chunks_mut(4096).for_each(|c| c.iter_mut().for_each(|v| *v = fake_quant(*v, s)));
}

/// Dynamic per-row E4M3 rounding of a row-major `(rows, cols)` activation, as the CUDA engine's FP8
/// GEMM inputs are rounded (`quant_e4m3_rows`, `rmsnorm_q8`, `swiglu_q8` in kernels.cu): per row
/// `s = max(max|x|, 1e-20) / 448` (f32), `x ← decode(encode(x · (1 / s))) · s` (f32, no f16 step:
/// cuBLASLt applies the scales in f32).
pub fn fake_quant_rows(x: &mut [f32], cols: usize) {
    x.par_chunks_mut(cols.max(1)).for_each(|r| {
        let amax = r.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = amax.max(1e-20) / E4M3_MAX;
        let inv = 1.0 / s;
        r.iter_mut().for_each(|v| *v = decode(encode(*v * inv)) * s);
    });
}

/// Quantizes `w (out, in)` to E4M3 with one f16 scale per output channel, stored transposed `(in, out)`
/// like the integer formats (codes are the E4M3 bit patterns, held as `i8`).
pub fn quantize_weight(w: &Tensor) -> QuantizedLinear {
    let (n_out, n_in) = (w.rows(), w.cols());
    let rows: Vec<(Vec<u8>, f16)> = (0..n_out)
        .into_par_iter()
        .map(|n| {
            let row = w.row(n);
            let amax = row.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            let s = scale_for_range(amax);
            let sf = s.to_f32();
            (row.iter().map(|&v| encode(v / sf)).collect(), s)
        })
        .collect();
    let mut q = vec![0i8; n_in * n_out];
    let mut scales = vec![f16::ZERO; n_out];
    for (n, (codes, s)) in rows.iter().enumerate() {
        for (k, &c) in codes.iter().enumerate() {
            q[k * n_out + n] = c as i8;
        }
        scales[n] = *s;
    }
    QuantizedLinear { format: WeightFormat::F8, in_features: n_in, out_features: n_out, q, scales }
}

/// Histogram of |x| with [`HIST_BINS_PER_OCTAVE`] equal bins per power of two from
/// 2^[`HIST_MIN_EXP`] to 2^[`HIST_MAX_EXP`], so a percentile is known to within 1.6 % without keeping
/// the activations. Zeros and values below the grid count in bin 0; values above it in the last bin.
#[derive(Debug, Clone)]
pub struct AbsHistogram {
    pub counts: Vec<u64>,
    pub total: u64,
    pub amax: f32,
}

pub const HIST_BINS_PER_OCTAVE: usize = 64;
pub const HIST_MIN_EXP: i32 = -24;
pub const HIST_MAX_EXP: i32 = 24;

impl Default for AbsHistogram {
    fn default() -> Self {
        let n = (HIST_MAX_EXP - HIST_MIN_EXP) as usize * HIST_BINS_PER_OCTAVE;
        AbsHistogram { counts: vec![0; n], total: 0, amax: 0.0 }
    }
}

impl AbsHistogram {
    /// Bin of |x| = a: the f32 exponent and the top 6 mantissa bits (64 linear bins per octave).
    fn bin(a: f32) -> usize {
        let n = (HIST_MAX_EXP - HIST_MIN_EXP) as i64 * HIST_BINS_PER_OCTAVE as i64;
        let base = ((127 + HIST_MIN_EXP) as i64) << 6;
        let b = (a.to_bits() >> 17) as i64 - base;
        b.clamp(0, n - 1) as usize
    }
    /// Upper edge of bin `b`.
    fn edge(b: usize) -> f32 {
        let base = ((127 + HIST_MIN_EXP) as u32) << 6;
        f32::from_bits((b as u32 + base + 1) << 17)
    }
    pub fn update(&mut self, x: &[f32]) {
        for v in x {
            let a = v.abs();
            if a.is_finite() {
                self.amax = self.amax.max(a);
                self.counts[Self::bin(a)] += 1;
            } else {
                let last = self.counts.len() - 1;
                self.counts[last] += 1;
            }
        }
        self.total += x.len() as u64;
    }
    /// The smallest grid edge with at least `p` % of |x| at or below it, capped at the amax
    /// (p = 100 gives the amax).
    pub fn percentile(&self, p: f64) -> f32 {
        if p >= 100.0 || self.total == 0 {
            return self.amax;
        }
        let want = (p / 100.0 * self.total as f64).ceil() as u64;
        let mut acc = 0u64;
        for (b, &c) in self.counts.iter().enumerate() {
            acc += c;
            if acc >= want {
                return Self::edge(b).min(self.amax);
            }
        }
        self.amax
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for b in 0..=255u8 {
            let v = decode(b);
            if v.is_nan() {
                assert_eq!(b & 0x7f, E4M3_NAN);
                continue;
            }
            // ±0 both decode to 0; encode keeps the sign.
            assert_eq!(encode(v), b, "code {b:#04x} value {v}");
        }
    }

    #[test]
    fn saturates_and_rounds_to_even() {
        assert_eq!(decode(encode(1e9)), 448.0);
        assert_eq!(decode(encode(f32::INFINITY)), 448.0);
        assert_eq!(decode(encode(-f32::INFINITY)), -448.0);
        assert!(decode(encode(f32::NAN)).is_nan());
        // 1.0625 is halfway between 1.0 (even mantissa 0) and 1.125: ties to 1.0.
        assert_eq!(decode(encode(1.0625)), 1.0);
        // 1.1875 halfway between 1.125 (odd) and 1.25 (even): 1.25.
        assert_eq!(decode(encode(1.1875)), 1.25);
        // Half the smallest subnormal ties to 0.
        assert_eq!(decode(encode(f32::powi(2.0, -10))), 0.0);
    }

    #[test]
    fn histogram_percentiles() {
        let mut h = AbsHistogram::default();
        let x: Vec<f32> = (1..=1000).map(|i| i as f32 / 100.0).collect();
        h.update(&x);
        assert_eq!(h.percentile(100.0), 10.0);
        let p = h.percentile(50.0);
        assert!((p / 5.0 - 1.0).abs() < 0.017, "{p}");
    }
}
