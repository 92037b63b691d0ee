//! GPU self-test and per-launch timing of the quantized decode GEMM (wq.rs, `wq_*`; session 50): synthetic codes of
//! every format it reads at the TinyLlama shapes and their launch shapes, at 64 and 40 rows (40 also with x's tensor
//! map zero-filling its boxes past them), written and accumulated — each against a host reference on the unpacked
//! codes (f64 sums of x · the f16 value the kernel converts to), and each launch timed alone (CUDA events around a
//! graph of repeated launches). Run by `cuda-check` with `TRTFORGE_CHECKS=wqk`. Each launch is timed twice: "hot",
//! the same weights every launch (resident in L2: session 51's numbers), and "cold", cycling through copies of the
//! weights that together exceed the L2, so that every launch streams its codes from HBM as a step's launches do. At
//! 64 rows every other K split the kernel takes is timed too (the fixed cost of a launch against its stages), and
//! cuBLASLt on f16 weights at each shape (what the engine runs where wq does not) as the comparator.
use super::gemm_check::{e4m3_to_f32, max_rel, Rng};
use super::gpu::{DevBuf, Gpu};
use super::launch::{DType, Dims, Kernels};
use super::wq;
use crate::error::Result;
use crate::quant::WeightFormat;
use half::f16;
use rayon::prelude::*;

/// One checked launch configuration.
#[derive(Debug, Clone)]
pub struct WqCase {
    pub label: &'static str,
    pub fmt: WeightFormat,
    pub rows: usize,
    pub n: usize,
    pub k: usize,
    /// (K slices, ring slots); (0, 0) for the cuBLASLt comparator (format F16).
    pub shape: (usize, usize),
    /// Rows the x view holds (64; `rows` where the tensor map zero-fills each box past them, launch.rs `wq`).
    pub xrows: usize,
    /// max |GPU − host| / max |host|.
    pub rel_err: f32,
    /// Mean time of one launch, µs, with the weights resident in L2 (the same launch repeated).
    pub us: f64,
    /// ... with every launch's weights read from HBM (a graph cycling through copies that exceed the L2).
    pub us_cold: f64,
}

/// Random codes of `fmt` for an (n × k) linear in the engine's stored layout, their scales (int8 / fp8: one a row;
/// int4 g128: (n, k / 128) row-major), and the f32 value of every element as the kernel sees it (int4: the f16
/// product of code and scale; int8 / fp8: the unscaled code — their row scale is applied to the sum).
fn synth(fmt: WeightFormat, n: usize, k: usize, rng: &mut Rng) -> (Vec<u8>, Vec<f16>, Vec<f32>) {
    match fmt {
        WeightFormat::I4 { .. } => {
            let u: Vec<u8> = (0..n * k).map(|_| (rng.u() * 16.0) as u8 & 15).collect();
            let sc: Vec<f16> =
                (0..n * k / wq::KC).map(|i| f16::from_f32((0.5 + rng.u()) * (1 + i % 5) as f32 * 0.01)).collect();
            // pack.rs's layout: each little-endian word holds 8 elements of a row, 2j at nibble j, 2j + 1 at j + 4
            let mut data = vec![0u8; n * k / 2];
            for (wi, word) in data.chunks_exact_mut(4).enumerate() {
                let mut v = 0u32;
                for e in 0..8 {
                    let nib = if e % 2 == 1 { e / 2 + 4 } else { e / 2 };
                    v |= (u[wi * 8 + e] as u32) << (4 * nib);
                }
                word.copy_from_slice(&v.to_le_bytes());
            }
            let val = (0..n * k)
                .map(|i| {
                    let s = sc[(i / k) * (k / wq::KC) + (i % k) / wq::KC];
                    f16::from_f32((u[i] as f32 - 8.0) * s.to_f32()).to_f32()
                })
                .collect();
            (data, sc, val)
        }
        _ => {
            let f8 = fmt == WeightFormat::F8;
            let codes: Vec<u8> = (0..n * k)
                .map(|_| {
                    let c = (rng.u() * 256.0) as u8;
                    if f8 && c & 0x7f == 0x7f {
                        c ^ 1
                    } else {
                        c
                    }
                })
                .collect();
            let sc: Vec<f16> = (0..n).map(|i| f16::from_f32((0.5 + rng.u()) * (1 + i % 7) as f32 * 0.002)).collect();
            let val = codes.iter().map(|&c| if f8 { e4m3_to_f32(c) } else { c as f32 - 128.0 }).collect();
            (codes, sc, val)
        }
    }
}

/// Runs the self-test on `gpu` (the kernels of `d`'s engine, whose module must hold wq: `gpu.wq`); `reps` launches
/// a timing.
pub fn run(gpu: &Gpu, d: &Dims, reps: usize) -> Result<Vec<WqCase>> {
    let kern = Kernels::new(gpu, d);
    let mut rng = Rng(0x5eed_0050);
    let shapes: [(&'static str, usize, usize, bool); 4] = [
        ("qkv", 2560, 2048, false),
        ("o", 2048, 2048, true),
        ("gateup", 11264, 2048, false),
        ("down", 2048, 5632, true),
    ];
    let (maxr, sms) = (wq::MAX_ROWS, gpu.sms as usize);
    let cm = wq::CM_X3 | wq::CM_INLINE;
    let mut out = vec![];
    for fmt in [WeightFormat::I8, WeightFormat::I4 { group: 128 }, WeightFormat::F8] {
        for &(label, n, k, acc) in &shapes {
            let (codes, sc, val) = synth(fmt, n, k, &mut rng);
            let (x, y0) = inputs(maxr, n, k, acc, &mut rng);
            // host reference (rows 0..64; the 40-row case is its first 40 rows)
            let i4 = matches!(fmt, WeightFormat::I4 { .. });
            let want = reference(&x, &val, (!i4).then_some(&sc[..]), &y0, n, k, acc);
            let packed = if i4 { wq::pack4_inline(&codes, &sc, n, k) } else { wq::pack8(&codes, n, k) };
            // copy 0 for the checks and the hot times; all of them (more bytes than the L2) for the cold times
            let copies = COLD_BYTES.div_ceil(packed.len()).clamp(2, 64);
            let w_d = (0..copies).map(|_| gpu.upload(&packed)).collect::<Result<Vec<_>>>()?;
            let (x_d, y_d) = (gpu.upload(&x)?, gpu.alloc(maxr * n * 4)?);
            let sc_d = if i4 { None } else { Some(gpu.upload(&sc)?) };
            // (rows, x view rows, K slices) at the engine's shape: 64, 40, and 40 with a view of 40 rows (x's boxes
            // zero-filled past them); then 64 rows at every other K split
            let (def, nch) = (wq::shape(n, k, sms).0, k / wq::KC);
            let mut runs = vec![(maxr, maxr, def), (40, maxr, def), (40, 40, def)];
            runs.extend([1, 2, 4, 8].into_iter().filter(|&s| s != def && wq::slices_ok(k, s)).map(|s| (maxr, maxr, s)));
            let x_all = x_d.view(DType::F16);
            for (rows, xrows, slices) in runs {
                let nst = wq::slots(nch.div_ceil(slices));
                let xv = x_all.slice(0, xrows * k)?;
                let launch = |copy: usize| {
                    kern.wq(
                        fmt,
                        rows,
                        n,
                        k,
                        w_d[copy % copies].view(DType::U8),
                        sc_d.as_ref().map(|b| b.view(DType::F16)),
                        xv,
                        y_d.view(DType::F32),
                        acc,
                        (slices, nst),
                        cm,
                    )
                };
                let (err, us, us_cold) = check_and_time(gpu, (&y_d, &y0), &want, rows * n, (reps, copies), launch)?;
                out.push(WqCase { label, fmt, rows, n, k, shape: (slices, nst), xrows, rel_err: err, us, us_cold });
            }
        }
    }
    // The comparator: what the engine runs where wq does not — cuBLASLt on f16 weights (the fp16 engine's linears,
    // and a quantized engine's qkv / o on their load-time f16 copy), autotuned at first use; 64 rows, checked against
    // the same host sums (format F16, shape 0 × 0).
    if gpu.has_lt() {
        for &(label, n, k, acc) in &shapes {
            let w: Vec<f16> = (0..n * k).map(|_| f16::from_f32((rng.u() * 2.0 - 1.0) * 0.05)).collect();
            let val: Vec<f32> = w.iter().map(|v| v.to_f32()).collect();
            let (x, y0) = inputs(maxr, n, k, acc, &mut rng);
            let want = reference(&x, &val, None, &y0, n, k, acc);
            let copies = COLD_BYTES.div_ceil(n * k * 2).clamp(2, 64);
            let w_d = (0..copies).map(|_| gpu.upload(&w)).collect::<Result<Vec<_>>>()?;
            let (x_d, y_d, s_d) = (gpu.upload(&x)?, gpu.alloc(maxr * n * 4)?, gpu.alloc(maxr * n * 4)?);
            let launch = |copy: usize| {
                let w = w_d[copy % copies].view(DType::F16);
                kern.gemm_lt(maxr, n, k, w, x_d.view(DType::F16), y_d.view(DType::F32), acc, s_d.view(DType::F32))
            };
            launch(0)?; // tunes the shape (outside any capture; trials write the scratch)
            let (err, us, us_cold) = check_and_time(gpu, (&y_d, &y0), &want, maxr * n, (reps, copies), launch)?;
            let (fmt, rows, shape, xrows) = (WeightFormat::F16, maxr, (0, 0), maxr);
            out.push(WqCase { label, fmt, rows, n, k, shape, xrows, rel_err: err, us, us_cold });
        }
    }
    Ok(out)
}

/// x (`rows` × k f16 in [−1, 1)) and the output's prior contents (accumulated: in [−0.5, 0.5); written: NaN).
fn inputs(rows: usize, n: usize, k: usize, acc: bool, rng: &mut Rng) -> (Vec<f16>, Vec<f32>) {
    let x = (0..rows * k).map(|_| f16::from_f32(rng.u() * 2.0 - 1.0)).collect();
    let y0 = (0..rows * n).map(|_| if acc { rng.u() - 0.5 } else { f32::NAN }).collect();
    (x, y0)
}

/// Host sums in f64 of x (rows × k) · val (n × k)ᵀ, times the row scales `sc` where given, plus `y0` where `acc`.
fn reference(x: &[f16], val: &[f32], sc: Option<&[f16]>, y0: &[f32], n: usize, k: usize, acc: bool) -> Vec<f32> {
    let mut want = vec![0f32; y0.len()];
    want.par_chunks_mut(n).enumerate().for_each(|(t, row)| {
        let xr: Vec<f64> = x[t * k..(t + 1) * k].iter().map(|v| v.to_f32() as f64).collect();
        for (o, w) in row.iter_mut().enumerate() {
            let s: f64 = val[o * k..(o + 1) * k].iter().zip(&xr).map(|(&a, &b)| a as f64 * b).sum();
            let s = sc.map_or(s, |sc| s * sc[o].to_f32() as f64);
            *w = s as f32 + if acc { y0[t * n + o] } else { 0.0 };
        }
    });
    want
}

/// [`max_rel`] over the first `len` outputs, and ∞ where an output past them is not bit for bit what it held before
/// (rows past a launch's are neither written nor accumulated).
fn rel_err(got: &[f32], want: &[f32], y0: &[f32], len: usize) -> f32 {
    if got[len..].iter().zip(&y0[len..]).any(|(a, b)| a.to_bits() != b.to_bits()) {
        f32::INFINITY
    } else {
        max_rel(&got[..len], &want[..len])
    }
}

/// One launch configuration's error and times: `launch(0)` once onto `y` holding `y0`, its output against `want`
/// ([`rel_err`] over the first `len` values), then `reps` launches of weight copy 0 (hot) and of every copy in turn
/// (cold, [`time_graph`]).
fn check_and_time(
    gpu: &Gpu,
    (y, y0): (&DevBuf, &[f32]),
    want: &[f32],
    len: usize,
    (reps, copies): (usize, usize),
    launch: impl Fn(usize) -> Result<()>,
) -> Result<(f32, f64, f64)> {
    gpu.htod(y, 0, y0)?;
    launch(0)?;
    let mut got = vec![0f32; y0.len()];
    gpu.dtoh(y, 0, &mut got)?;
    let err = rel_err(&got, want, y0, len);
    let us = time_graph(gpu, reps, |_| launch(0))?;
    let us_cold = time_graph(gpu, reps.max(copies), &launch)?;
    Ok((err, us, us_cold))
}

/// Weight bytes the cold timing cycles through: more than an H100's or H200's L2 (50 / 60 MB).
const COLD_BYTES: usize = 128 << 20;

/// Mean µs of one of `reps` launches `f(0) .. f(reps − 1)` captured in one CUDA graph (with the engine's programmatic
/// dependent launch between them, so that the host's launch cost is not what is timed), its second replay.
fn time_graph(gpu: &Gpu, reps: usize, f: impl Fn(usize) -> Result<()>) -> Result<f64> {
    gpu.begin_capture()?;
    let captured = (0..reps).try_for_each(&f);
    let graph = gpu.end_capture();
    captured?;
    let graph = graph?;
    gpu.launch_graph(&graph)?;
    let tm = gpu.timer()?;
    tm.start()?;
    gpu.launch_graph(&graph)?;
    Ok(tm.stop_ms()? * 1e3 / reps as f64)
}

#[cfg(test)]
mod tests {
    use super::{reference, rel_err};
    use half::f16;

    #[test]
    fn reference_and_error_of_a_small_product() {
        // x (2 × 3) · val (2 × 3)ᵀ, row scales 2 and 0.5, plus y0: worked by hand
        let x: Vec<f16> = [1.0, 2.0, -1.0, 0.5, 0.0, 4.0].map(f16::from_f32).to_vec();
        let val = [1.0, 1.0, 1.0, 2.0, -1.0, 0.25];
        let sc = [2.0, 0.5].map(f16::from_f32);
        let y0 = [0.5, -1.0, 0.0, 1.0];
        let want = reference(&x, &val, Some(&sc), &y0, 2, 3, true);
        // row 0: (1 + 2 − 1)·2 + 0.5 = 4.5, (2 − 2 − 0.25)·0.5 − 1 = −1.125; row 1: 4.5·2 + 0 = 9, (1 + 1)·0.5 + 1 = 2
        assert_eq!(want, vec![4.5, -1.125, 9.0, 2.0]);
        assert_eq!(reference(&x, &val, None, &[0.0; 4], 2, 3, false), vec![2.0, -0.25, 4.5, 2.0]);
        assert!((rel_err(&[4.5, -1.0, 9.0, 2.0], &want, &y0, 4) - 0.125 / 9.0).abs() < 1e-7);
        assert_eq!(rel_err(&[4.5, f32::NAN, 9.0, 2.0], &want, &y0, 4), f32::INFINITY);
        // the first row only: the second must still hold y0, bit for bit
        assert_eq!(rel_err(&[4.5, -1.125, 0.0, 1.0], &want, &y0, 2), 0.0);
        assert_eq!(rel_err(&[4.5, -1.125, 9.0, 2.0], &want, &y0, 2), f32::INFINITY);
    }
}
