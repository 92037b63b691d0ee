//! Round-to-nearest quantization with absmax scales: the quantizer every method ends in.
//!
//! For each block (a whole row for int8, `group` consecutive input channels for int4):
//! `scale = f16(clip · max|w| / qmax)` (> 0), `q = clamp(round(w / scale), qmin, qmax)` with `round` half
//! away from zero and `scale` already rounded to f16, so `q · scale` is exactly what the engine
//! dequantizes. `clip` is 1 for plain RTN; AWQ's clip search picks it per block.
use super::{check_applicable, stored_in, QuantizedLinear, QuantizedModel, WeightFormat};
use crate::error::Result;
use crate::model::{ModelWeights, Param, Tensor};
use half::f16;
use rayon::prelude::*;

/// The f16 scale of a block whose (clipped) absmax is `amax`; never 0 (TensorRT requires strictly
/// positive scales): an all-zero block gets the smallest positive f16 and codes 0.
#[inline]
pub fn block_scale(amax: f32, qmax: i32) -> f16 {
    let s = f16::from_f32(amax / qmax as f32);
    if s.to_f32() > 0.0 {
        s
    } else {
        f16::from_bits(1)
    }
}

/// Code of `w` under `scale`.
#[inline]
pub fn code(w: f32, scale: f32, qmin: i32, qmax: i32) -> i8 {
    (w / scale).round().clamp(qmin as f32, qmax as f32) as i8
}

/// Quantizes then dequantizes one block in place of `out` (f32 arithmetic, no f16 rounding of the
/// product); returns the block's scale. The search loops of AWQ use this.
#[inline]
pub fn fake_quant_block(w: &[f32], clip: f32, qmin: i32, qmax: i32, out: &mut [f32]) -> f32 {
    let amax = w.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let s = block_scale(clip * amax, qmax).to_f32();
    for (o, &v) in out.iter_mut().zip(w) {
        *o = code(v, s, qmin, qmax) as f32 * s;
    }
    s
}

/// Quantizes `w (out, in)`. `clip`, when given, holds one ratio in (0, 1] per block,
/// `(out, ceil(in / block))`. A last block shorter than the group (padded storage) is quantized on its
/// real elements; its padding codes are 0.
pub fn quantize_tensor(w: &Tensor, format: WeightFormat, clip: Option<&[f32]>) -> QuantizedLinear {
    if format == WeightFormat::F8 {
        // Round-to-nearest on the E4M3 grid; the scale maps the row's absmax onto ±448.
        return super::fp8::quantize_weight(w);
    }
    let (n_out, n_in) = (w.rows(), w.cols());
    let bl = format.block_len(n_in);
    let nb = n_in.div_ceil(bl);
    let (qmin, qmax) = (format.qmin(), format.qmax());
    // Per output row: its codes (in) and block scales (nb); rows are independent.
    let rows: Vec<(Vec<i8>, Vec<f16>)> = (0..n_out)
        .into_par_iter()
        .map(|n| {
            let row = w.row(n);
            let mut codes = vec![0i8; n_in];
            let mut scales = vec![f16::ZERO; nb];
            for b in 0..nb {
                let r0 = b * bl;
                let r1 = (r0 + bl).min(n_in);
                let blk = &row[r0..r1];
                let amax = blk.iter().fold(0.0f32, |a, v| a.max(v.abs()));
                let r = clip.map_or(1.0, |c| c[n * nb + b]);
                let s = block_scale(r * amax, qmax);
                scales[b] = s;
                let sf = s.to_f32();
                for (c, &v) in codes[r0..r1].iter_mut().zip(blk) {
                    *c = code(v, sf, qmin, qmax);
                }
            }
            (codes, scales)
        })
        .collect();
    // Transpose into the stored (stored_in, out) layout; padding rows stay 0.
    let mut q = vec![0i8; stored_in(format, n_in) * n_out];
    let mut scales = vec![f16::ZERO; nb * n_out];
    for (n, (codes, sc)) in rows.iter().enumerate() {
        for (k, &c) in codes.iter().enumerate() {
            q[k * n_out + n] = c;
        }
        for (b, &s) in sc.iter().enumerate() {
            scales[b * n_out + n] = s;
        }
    }
    QuantizedLinear { format, in_features: n_in, out_features: n_out, q, scales }
}

/// Quantizes the listed linears of `w` (checked first), with optional per-parameter clip ratios.
pub fn quantize_params(
    w: &ModelWeights,
    params: &[Param],
    format: WeightFormat,
    pad_to_group: bool,
    clip: Option<&std::collections::HashMap<Param, Vec<f32>>>,
) -> Result<QuantizedModel> {
    check_applicable(w, params, format, pad_to_group)?;
    let mut m = QuantizedModel::default();
    for &p in params {
        let c = clip.and_then(|c| c.get(&p)).map(|v| v.as_slice());
        m.linears.insert(p, quantize_tensor(w.get(p), format, c));
    }
    Ok(m)
}
