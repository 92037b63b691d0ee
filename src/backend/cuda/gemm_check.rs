//! Self-test of the GEMM path's cuBLASLt products on synthetic data (issue #15, session 4): the
//! FP8 E4M3 GEMM (per-output-channel weight scales, per-row activation scales from
//! `quant_e4m3_rows`) against a host reference on the same codes, and the tuned time of the f16
//! and FP8 GEMMs at the TinyLlama shapes. Run by `trtforge cuda-check` on sm_89+ GPUs; the FP8
//! weights of an engine (helper F's loader) plug into [`launch::Kernels::gemm_fp8`] the same way.
use super::gpu::{Gpu, LtScale, LtShape, LtType};
use super::launch::{DType, Dims, Kernels};
use crate::error::{Error, Result};
use half::f16;

/// The 127 finite non-negative E4M3 (fn) values by code (0x00 ..= 0x7e; 0x7f is NaN).
fn e4m3_table() -> Vec<f32> {
    (0u8..0x7f).map(e4m3_to_f32).collect()
}

/// Decodes one E4M3 (fn) byte.
pub fn e4m3_to_f32(b: u8) -> f32 {
    let sign = if b & 0x80 != 0 { -1.0 } else { 1.0 };
    let (e, m) = (((b >> 3) & 15) as i32, (b & 7) as f32);
    if e == 15 && m == 7.0 {
        return f32::NAN;
    }
    let v = if e == 0 { m / 8.0 * 2f32.powi(-6) } else { (1.0 + m / 8.0) * 2f32.powi(e - 7) };
    sign * v
}

/// Encodes `x` as E4M3 (fn): round to nearest (ties to the even code), saturating at ±448.
pub fn f32_to_e4m3(table: &[f32], x: f32) -> u8 {
    let sign = if x.is_sign_negative() { 0x80u8 } else { 0 };
    let a = x.abs().min(448.0);
    let i = table.partition_point(|&t| t < a);
    let code = if i == 0 {
        0
    } else if i >= table.len() {
        table.len() - 1
    } else {
        let (lo, hi) = (a - table[i - 1], table[i] - a);
        if lo < hi || (lo == hi && (i - 1) % 2 == 0) {
            i - 1
        } else {
            i
        }
    };
    sign | code as u8
}

/// Max |a - b| over max |b| (NaN anywhere: infinity); also the wq self-test's (wq_check.rs).
pub(super) fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    let d = a.iter().zip(b).fold(0f32, |m, (x, y)| if (x - y).is_nan() { f32::INFINITY } else { m.max((x - y).abs()) });
    d / scale
}

/// SplitMix64 (also the wq self-test's, wq_check.rs).
pub(super) struct Rng(pub(super) u64);
impl Rng {
    /// Uniform in [0, 1).
    pub(super) fn u(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Uniform in [-1, 1).
    fn next(&mut self) -> f32 {
        self.u() * 2.0 - 1.0
    }
}

/// (label, rows, n, k, f16 µs, fp8 µs) of one tuned GEMM shape.
pub type GemmTiming = (String, usize, usize, usize, Option<f64>, Option<f64>);

/// What the self-test found.
#[derive(Debug, Clone)]
pub struct GemmSelfTest {
    /// max |GPU − host| / max |host| of the FP8 GEMM over the checked shapes (same codes).
    pub fp8_rel_err: f32,
    /// Worst |dequant(q) − x| of `quant_e4m3_rows` in units of the E4M3 half-spacing bound.
    pub quant_err_ratio: f32,
    /// Weight and activation scale modes cuBLASLt ran (per channel / per row, else per tensor).
    pub w_mode: LtScale,
    pub a_mode: LtScale,
    /// (label, rows, n, k, f16 µs, fp8 µs) of the tuned GEMMs at the TinyLlama shapes.
    pub timings: Vec<GemmTiming>,
}

/// The FP8 GEMM of one shape with the scale modes (`w_mode`, `a_mode`) against a host reference on
/// the same codes (c starts random and the GEMM accumulates into it); returns (max rel. error of
/// the GEMM, worst `quant_e4m3_rows` error in units of its bound). Err where cuBLASLt refuses.
#[allow(clippy::too_many_arguments)]
fn fp8_case(
    gpu: &Gpu,
    k: &Kernels,
    table: &[f32],
    rng: &mut Rng,
    (rows, n, kk): (usize, usize, usize),
    w_mode: LtScale,
    a_mode: LtScale,
) -> Result<(f32, f32)> {
    // Weights: rows of different magnitudes; per-channel scales max |w_r| / 448 (or one scale).
    let w: Vec<f32> = (0..n * kk).map(|i| rng.next() * (1 + (i / kk) % 7) as f32 * 0.05).collect();
    let wmax = w.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-20) / 448.0;
    let mut wq = vec![0u8; n * kk];
    let mut ws = vec![0f32; n];
    for r in 0..n {
        let row = &w[r * kk..(r + 1) * kk];
        let s = match w_mode {
            LtScale::OuterVec => row.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-20) / 448.0,
            _ => wmax,
        };
        ws[r] = s;
        for (j, &x) in row.iter().enumerate() {
            wq[r * kk + j] = f32_to_e4m3(table, x / s);
        }
    }
    let x: Vec<f16> = (0..rows * kk)
        .map(|i| {
            let amp = if i % 97 == 0 { 8.0 } else { 1.5 };
            f16::from_f32(rng.next() * amp * (1 + i / kk % 3) as f32)
        })
        .collect();
    let (wq_d, ws_d, x_d) = (gpu.upload(&wq)?, gpu.upload(&ws)?, gpu.upload(&x)?);
    let (q_d, s_d) = (gpu.alloc(rows * kk)?, gpu.alloc(rows * 4)?);
    k.quant_e4m3_rows(x_d.view(DType::F16), q_d.view(DType::U8), s_d.f32(), None, rows, kk)?;
    let mut q = vec![0u8; rows * kk];
    let mut s = vec![0f32; rows];
    gpu.dtoh(&q_d, 0, &mut q)?;
    gpu.dtoh(&s_d, 0, &mut s)?;
    let mut qworst = 0f32;
    for t in 0..rows {
        for j in 0..kk {
            let xv = x[t * kk + j].to_f32();
            let dq = e4m3_to_f32(q[t * kk + j]) * s[t];
            let bound = xv.abs() / 16.0 + s[t] * 2f32.powi(-10);
            qworst = qworst.max((dq - xv).abs() / bound.max(1e-30));
        }
    }
    if a_mode != LtScale::OuterVec {
        // One activation scale for the tensor: requantize on the host.
        let st = x.iter().fold(0f32, |m, v| m.max(v.to_f32().abs())).max(1e-20) / 448.0;
        q = x.iter().map(|v| f32_to_e4m3(table, v.to_f32() / st)).collect();
        s = vec![st; rows];
        gpu.htod(&q_d, 0, &q)?;
        gpu.htod(&s_d, 0, &s)?;
    }
    let c0: Vec<f32> = (0..rows * n).map(|_| rng.next()).collect();
    let mut want = vec![0f32; rows * n];
    for t in 0..rows {
        for r in 0..n {
            let mut acc = 0f64;
            for j in 0..kk {
                acc += (e4m3_to_f32(q[t * kk + j]) * e4m3_to_f32(wq[r * kk + j])) as f64;
            }
            want[t * n + r] = (acc * s[t] as f64 * ws[r] as f64) as f32 + c0[t * n + r];
        }
    }
    let c_d = gpu.upload(&c0)?;
    let scratch = gpu.alloc(rows * n * 4)?;
    k.gemm_fp8(
        rows,
        n,
        kk,
        wq_d.view(DType::U8),
        ws_d.f32(),
        w_mode,
        q_d.view(DType::U8),
        s_d.f32(),
        a_mode,
        c_d.f32(),
        true,
        scratch.f32(),
    )?;
    let mut got = vec![0f32; rows * n];
    gpu.dtoh(&c_d, 0, &mut got)?;
    Ok((max_rel(&got, &want), qworst))
}

/// Runs the self-test on `gpu` (the kernels of `d`'s engine; f16 activations).
pub fn run(gpu: &Gpu, d: &Dims) -> Result<GemmSelfTest> {
    if d.act != DType::F16 {
        return Err(Error::Gpu("the GEMM self-test needs an f16-activation engine".into()));
    }
    let k = Kernels::new(gpu, d);
    let table = e4m3_table();
    let mut rng = Rng(0x5eed);
    // Per-channel weight and per-row activation scales first; the first pair cuBLASLt runs is kept.
    use LtScale::{OuterVec, Scalar};
    let mut chosen = None;
    for (wm, am) in [(OuterVec, OuterVec), (OuterVec, Scalar), (Scalar, OuterVec), (Scalar, Scalar)] {
        match fp8_case(gpu, &k, &table, &mut rng, (37, 384, 512), wm, am) {
            Ok(e) => {
                chosen = Some((wm, am, e));
                break;
            }
            Err(e) => crate::util::errln!("fp8 GEMM with weight scales {wm:?}, activation scales {am:?}: {e}"),
        }
    }
    let (w_mode, a_mode, (e1, q1)) =
        chosen.ok_or_else(|| Error::Gpu("cuBLASLt ran the FP8 GEMM with none of the scale modes".into()))?;
    let (e2, q2) = fp8_case(gpu, &k, &table, &mut rng, (64, 256, 2048), w_mode, a_mode)?;
    let (worst, qworst) = (e1.max(e2), q1.max(q2));
    // Tuned times at the TinyLlama-1.1B shapes (qkv, o, gate/up, down), decode bs64 and prefill 512.
    let mut timings = vec![];
    let shapes = [
        ("qkv", 2560usize, 2048usize, false),
        ("o", 2048, 2048, true),
        ("gateup", 11264, 2048, false),
        ("down", 2048, 5632, true),
    ];
    let big = |n: usize| -> Result<super::gpu::DevBuf> { gpu.alloc(n) };
    let (wmax, rmax) = (11264 * 5632, 512usize);
    let w16 = big(wmax * 2)?;
    let w8 = big(wmax)?;
    // Random codes (no NaN: 0x7f / 0xff avoided) and f16 values in [-1, 1].
    let codes: Vec<u8> = (0..wmax)
        .map(|_| {
            let c = ((rng.next() + 1.0) * 127.5) as u8;
            if c & 0x7f == 0x7f {
                c ^ 1
            } else {
                c
            }
        })
        .collect();
    gpu.htod(&w8, 0, &codes)?;
    let halves: Vec<f16> = codes.iter().map(|&c| f16::from_f32(e4m3_to_f32(c) / 448.0)).collect();
    gpu.htod(&w16, 0, &halves)?;
    let x16 = gpu.upload(&halves[..rmax * 5632])?;
    let x8 = gpu.upload(&codes[..rmax * 5632])?;
    let ones: Vec<f32> = vec![1.0 / 448.0; 11264.max(rmax)];
    let sc = gpu.upload(&ones)?;
    let out = big(rmax * 11264 * 4)?;
    let scr = big(rmax * 11264 * 4)?;
    for rows in [64usize, rmax] {
        for &(label, n, kk, acc) in &shapes {
            let f16s = LtShape {
                rows,
                n,
                k: kk,
                w: LtType::F16,
                a: LtType::F16,
                out: LtType::F32,
                accumulate: acc,
                w_scale: LtScale::None,
                a_scale: LtScale::None,
            };
            let f8s = LtShape { w: LtType::E4M3, a: LtType::E4M3, w_scale: w_mode, a_scale: a_mode, ..f16s };
            let w16v = w16.view(DType::F16);
            k.gemm_lt(rows, n, kk, w16v, x16.view(DType::F16), out.f32(), acc, scr.f32())?;
            let r8 = k.gemm_fp8(
                rows,
                n,
                kk,
                w8.view(DType::U8),
                sc.f32(),
                w_mode,
                x8.view(DType::U8),
                sc.f32(),
                a_mode,
                out.f32(),
                acc,
                scr.f32(),
            );
            if let Err(e) = r8 {
                crate::util::errln!("fp8 GEMM {rows}x{n}x{kk}: {e}");
            }
            timings.push((label.to_string(), rows, n, kk, gpu.lt_tuned_us(&f16s), gpu.lt_tuned_us(&f8s)));
        }
    }
    gpu.sync()?;
    Ok(GemmSelfTest { fp8_rel_err: worst, quant_err_ratio: qworst, w_mode, a_mode, timings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e4m3_round_trips_every_code_and_rounds_to_nearest() {
        let t = e4m3_table();
        assert_eq!(t.len(), 127);
        assert_eq!(t[126], 448.0);
        assert_eq!(t[1], 2f32.powi(-9));
        for c in 0u8..0x7f {
            assert_eq!(f32_to_e4m3(&t, e4m3_to_f32(c)), c);
            assert_eq!(f32_to_e4m3(&t, -e4m3_to_f32(c)), c | 0x80);
        }
        assert_eq!(f32_to_e4m3(&t, 1000.0), 0x7e); // saturates
        assert_eq!(e4m3_to_f32(f32_to_e4m3(&t, 1.0 + 1.0 / 16.0)), 1.0); // tie -> even code (1.0)
        assert_eq!(e4m3_to_f32(f32_to_e4m3(&t, 1.1)), 1.125);
    }
}
