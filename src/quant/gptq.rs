//! GPTQ (Frantar et al., 2022) on the FP8 E4M3 grid: the weight columns are rounded one at a time
//! and each rounding error is spread over the columns not yet rounded, weighted by the inverse of
//! the input Gram matrix `H = XᵀX` from calibration, so the layer's output error `‖X ΔWᵀ‖²` (not
//! each weight's error) is what gets small. Per-output-channel scales stay those of plain RTN
//! (row absmax / 448 of the float weights), so the stored format is unchanged. Pure: weights and
//! the Gram matrix in, codes out.
use super::fp8::{decode, encode, scale_for_range};
use super::{QuantizedLinear, WeightFormat};
use crate::error::{Error, Result};
use crate::model::Tensor;
use half::f16;
use rayon::prelude::*;

/// Damping added to H's diagonal, relative to its mean (GPTQ's default 1 %).
pub const DAMP: f64 = 0.01;

/// What GPTQ needs from one input site's Gram matrix, shared by the linears reading that input: the
/// upper Cholesky factor of the damped inverse, and which inputs were never active.
pub struct Factor {
    n: usize,
    u: Vec<f64>,
    dead: Vec<bool>,
}

/// Quantizes `w (out, in)` to fp8 with GPTQ's error feedback; `gram (in, in)` is `Σ x xᵀ` over the
/// calibration tokens (any positive multiple works: only its inverse's shape matters).
pub fn quantize_fp8(w: &Tensor, gram: &[f32]) -> Result<QuantizedLinear> {
    quantize_fp8_with(w, &factor(gram, w.cols())?)
}

/// [`Factor`] of a Gram matrix `(n, n)`.
pub fn factor(gram: &[f32], n_in: usize) -> Result<Factor> {
    if gram.len() != n_in * n_in {
        return Err(Error::Invalid(format!("GPTQ: Gram matrix of {} values for {n_in} inputs", gram.len())));
    }
    // H in f64, dead inputs (never active) get a unit diagonal and no weight.
    let mut h: Vec<f64> = gram.iter().map(|&v| v as f64).collect();
    let mean_diag = (0..n_in).map(|i| h[i * n_in + i]).sum::<f64>() / n_in as f64;
    let dead: Vec<bool> = (0..n_in).map(|i| h[i * n_in + i] <= 0.0).collect();
    let damp = DAMP * mean_diag.max(1e-12);
    for i in 0..n_in {
        if dead[i] {
            h[i * n_in + i] = 1.0;
        }
        h[i * n_in + i] += damp;
    }
    let hinv = inverse_spd(&h, n_in)?;
    let u = cholesky_upper(&hinv, n_in)?; // Hinv = Uᵀ U
    Ok(Factor { n: n_in, u, dead })
}

/// [`quantize_fp8`] with a precomputed [`Factor`] of the input's Gram matrix.
pub fn quantize_fp8_with(w: &Tensor, f: &Factor) -> Result<QuantizedLinear> {
    let (n_out, n_in) = (w.rows(), w.cols());
    if f.n != n_in {
        return Err(Error::Invalid(format!("GPTQ: a factor for {} inputs, the weight has {n_in}", f.n)));
    }
    let (u, dead) = (&f.u, &f.dead);
    // Row scales from the float weights, as RTN chooses them.
    let scales: Vec<f16> =
        (0..n_out).map(|r| scale_for_range(w.row(r).iter().fold(0.0f32, |a, v| a.max(v.abs())))).collect();
    // Each output row is independent: run the column sweep per row, in parallel.
    let codes: Vec<Vec<u8>> = (0..n_out)
        .into_par_iter()
        .map(|r| {
            let s = scales[r].to_f32();
            let mut row: Vec<f64> = w.row(r).iter().zip(dead).map(|(&v, &d)| if d { 0.0 } else { v as f64 }).collect();
            let mut out = vec![0u8; n_in];
            for j in 0..n_in {
                let c = encode((row[j] / s as f64) as f32);
                out[j] = c;
                let q = decode(c) as f64 * s as f64;
                let err = (row[j] - q) / u[j * n_in + j];
                for k in j + 1..n_in {
                    row[k] -= err * u[j * n_in + k];
                }
            }
            out
        })
        .collect();
    let mut q = vec![0i8; n_in * n_out];
    for (r, cs) in codes.iter().enumerate() {
        for (k, &c) in cs.iter().enumerate() {
            q[k * n_out + r] = c as i8;
        }
    }
    Ok(QuantizedLinear { format: WeightFormat::F8, in_features: n_in, out_features: n_out, q, scales })
}

/// Activation-aware GPTQ target (issue #15; "GPTQ with asymmetric calibration"): GPTQ minimises
/// `‖X_q (W̃ − Ŵ)ᵀ‖²` for the Gram matrix `H_q = Σ x_q x_qᵀ` of the **fp8-rounded** inputs; with
/// `W̃ = W C H_q⁻¹`, `C = Σ x x_qᵀ` (float input × rounded input), that equals `‖X_q Ŵᵀ − X Wᵀ‖²` up
/// to a constant, so the codes also compensate the activation rounding. Returns
/// `M = (C + λI)(H_q + λI)⁻¹` (in, in), row-major, λ = `damp` × mean diagonal of `H_q` (dead inputs
/// as in [`factor`]): the target `W M` of a weight `W (out, in)` ([`apply_transfer`]) minimises
/// `‖X_q Ŵᵀ − X Wᵀ‖² + λ‖Ŵ − W‖²` (ridge towards the float weight).
pub fn act_aware_transfer(cross: &[f32], gram_q: &[f32], n: usize, damp: f64) -> Result<Vec<f64>> {
    if cross.len() != n * n || gram_q.len() != n * n {
        return Err(Error::Invalid(format!(
            "GPTQ: cross / Gram matrices of {} / {} values for {n} inputs",
            cross.len(),
            gram_q.len()
        )));
    }
    let mut h: Vec<f64> = gram_q.iter().map(|&v| v as f64).collect();
    let mean_diag = (0..n).map(|i| h[i * n + i]).sum::<f64>() / n as f64;
    let damp = damp * mean_diag.max(1e-12);
    let mut c: Vec<f64> = cross.iter().map(|&v| v as f64).collect();
    for i in 0..n {
        if h[i * n + i] <= 0.0 {
            h[i * n + i] = 1.0;
        }
        h[i * n + i] += damp;
        c[i * n + i] += damp;
    }
    let hinv = inverse_spd(&h, n)?;
    let c = ndarray::Array2::from_shape_vec((n, n), c).map_err(|e| Error::Invalid(e.to_string()))?;
    let hi = ndarray::Array2::from_shape_vec((n, n), hinv).map_err(|e| Error::Invalid(e.to_string()))?;
    Ok(c.dot(&hi).into_raw_vec_and_offset().0)
}

/// `W M` for a weight `w (out, in)` and [`act_aware_transfer`]'s `M (in, in)`.
pub fn apply_transfer(w: &Tensor, m: &[f64]) -> Result<Tensor> {
    let (o, n) = (w.rows(), w.cols());
    if m.len() != n * n {
        return Err(Error::Invalid(format!("GPTQ: transfer of {} values for {n} inputs", m.len())));
    }
    let wa = ndarray::Array2::from_shape_vec((o, n), w.data.iter().map(|&v| v as f64).collect())
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let ma = ndarray::ArrayView2::from_shape((n, n), m).map_err(|e| Error::Invalid(e.to_string()))?;
    let t = wa.dot(&ma);
    Ok(Tensor::new(vec![o, n], t.iter().map(|&v| v as f32).collect()))
}

/// Lower Cholesky factor `L` of a symmetric positive definite `a (n, n)`: `a = L Lᵀ`.
fn cholesky_lower(a: &[f64], n: usize) -> Result<Vec<f64>> {
    let mut l = vec![0.0f64; n * n];
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= l[j * n + k] * l[j * n + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return Err(Error::Invalid(format!("GPTQ: the damped Gram matrix is not positive definite (pivot {j})")));
        }
        let d = d.sqrt();
        l[j * n + j] = d;
        let lj: Vec<f64> = l[j * n..j * n + j].to_vec();
        let rows: Vec<(usize, f64)> = (j + 1..n)
            .into_par_iter()
            .map(|i| {
                let li = &l[i * n..i * n + j];
                let mut v = a[i * n + j];
                for k in 0..j {
                    v -= li[k] * lj[k];
                }
                (i, v / d)
            })
            .collect();
        for (i, v) in rows {
            l[i * n + j] = v;
        }
    }
    Ok(l)
}

/// Upper Cholesky factor `U` of an SPD matrix: `a = Uᵀ U` (U = Lᵀ).
fn cholesky_upper(a: &[f64], n: usize) -> Result<Vec<f64>> {
    let l = cholesky_lower(a, n)?;
    let mut u = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            u[j * n + i] = l[i * n + j];
        }
    }
    Ok(u)
}

/// Inverse of an SPD matrix through its Cholesky factor: `a⁻¹ = L⁻ᵀ L⁻¹`.
fn inverse_spd(a: &[f64], n: usize) -> Result<Vec<f64>> {
    let l = cholesky_lower(a, n)?;
    // Columns of L⁻¹ by forward substitution, in parallel: column c solves L x = e_c.
    let cols: Vec<Vec<f64>> = (0..n)
        .into_par_iter()
        .map(|c| {
            let mut x = vec![0.0f64; n];
            for i in c..n {
                let mut v = if i == c { 1.0 } else { 0.0 };
                for k in c..i {
                    v -= l[i * n + k] * x[k];
                }
                x[i] = v / l[i * n + i];
            }
            x
        })
        .collect();
    // a⁻¹[i][j] = Σ_k Linv[k][i] Linv[k][j], Linv[k][i] = cols[i][k] (zero for k < i).
    let out: Vec<Vec<f64>> = (0..n)
        .into_par_iter()
        .map(|i| {
            (0..n)
                .map(|j| {
                    let k0 = i.max(j);
                    (k0..n).map(|k| cols[i][k] * cols[j][k]).sum()
                })
                .collect()
        })
        .collect();
    Ok(out.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_and_factors_are_exact_on_a_known_matrix() {
        // A = [[4, 2], [2, 3]]: A⁻¹ = [[3, -2], [-2, 4]] / 8.
        let a = [4.0, 2.0, 2.0, 3.0];
        let inv = inverse_spd(&a, 2).unwrap();
        for (x, y) in inv.iter().zip([0.375, -0.25, -0.25, 0.5]) {
            assert!((x - y).abs() < 1e-12, "{inv:?}");
        }
        let u = cholesky_upper(&a, 2).unwrap();
        // Uᵀ U = A
        let back = [u[0] * u[0], u[0] * u[1], u[0] * u[1], u[1] * u[1] + u[3] * u[3]];
        for (x, y) in back.iter().zip(a) {
            assert!((x - y).abs() < 1e-12);
        }
        assert!(inverse_spd(&[1.0, 2.0, 2.0, 1.0], 2).is_err(), "indefinite");
    }

    /// The activation-aware target solves its normal equations: `M (H_q + λI) = C + λI`, and for a
    /// weight `W` the target `W M` minimises `‖X_q Ŵᵀ − X Wᵀ‖² + λ‖Ŵ − W‖²` (its gradient vanishes),
    /// checked with plain sums over the rows, not through the code's inverse.
    #[test]
    fn act_aware_target_solves_the_normal_equations() {
        let (n, m) = (6usize, 40usize);
        let mut seed = 12345u64;
        let mut rnd = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0
        };
        let x: Vec<f64> = (0..m * n).map(|_| rnd()).collect();
        let xq: Vec<f64> = x.iter().map(|v| (v * 4.0).round() / 4.0).collect(); // a coarse rounding
        let (mut c, mut h) = (vec![0f32; n * n], vec![0f32; n * n]);
        for r in 0..m {
            for i in 0..n {
                for j in 0..n {
                    c[i * n + j] += (x[r * n + i] * xq[r * n + j]) as f32;
                    h[i * n + j] += (xq[r * n + i] * xq[r * n + j]) as f32;
                }
            }
        }
        let mm = act_aware_transfer(&c, &h, n, 0.05).unwrap();
        let lambda = 0.05 * (0..n).map(|i| h[i * n + i] as f64).sum::<f64>() / n as f64;
        for i in 0..n {
            for j in 0..n {
                let lhs: f64 =
                    (0..n).map(|k| mm[i * n + k] * h[k * n + j] as f64).sum::<f64>() + lambda * mm[i * n + j];
                let rhs = c[i * n + j] as f64 + if i == j { lambda } else { 0.0 };
                assert!((lhs - rhs).abs() < 1e-6 * (1.0 + rhs.abs()), "({i},{j})");
            }
        }
        // Gradient of ‖X_q Ŵᵀ − X Wᵀ‖² + λ‖Ŵ‖² at Ŵ = W M, for a 3-row W, from the rows directly.
        let w: Vec<f32> = (0..3 * n).map(|_| rnd() as f32).collect();
        let t = apply_transfer(&Tensor::new(vec![3, n], w.clone()), &mm).unwrap();
        for o in 0..3 {
            for j in 0..n {
                let mut g = lambda * (t.data[o * n + j] - w[o * n + j]) as f64;
                for r in 0..m {
                    let pred: f64 = (0..n).map(|k| t.data[o * n + k] as f64 * xq[r * n + k]).sum();
                    let want: f64 = (0..n).map(|k| w[o * n + k] as f64 * x[r * n + k]).sum();
                    g += (pred - want) * xq[r * n + j];
                }
                assert!(g.abs() < 1e-3, "gradient ({o},{j}) = {g}");
            }
        }
    }
}
