//! The quantized batched decode GEMM (`wq_*`, kernels_wq.cu; session 37; the default on cc 9.0 since session 38,
//! [`Mode`]): decode passes of 9..=64 rows of int8 / int4 g128 / fp8 engines read their codes, not the load-time
//! f16 copy. This module holds its host side: which linears it runs, their load-time pack into wgmma's
//! register-operand fragment order, and the launch shape.
//!
//! The pack (a 64-row tile `t`, a 128-k chunk `c`, chunks contiguous in (t, c) order; `g` = lane / 4, `t4` =
//! lane % 4, warp `w` owns tile rows 16w .. 16w + 15):
//! - 8-bit (int8 stored as q + 128, fp8 E4M3 codes): 8 KB a chunk = [w 4][j 4][lane 32][16 B]; bytes 8h .. 8h + 7
//!   of (w, lane, j) are k16 step 2j + h, in the order (row g, k 2t4), (g, 2t4 + 1), (g + 8, 2t4), (g + 8, 2t4 + 1),
//!   (g, 8 + 2t4), (g, 9 + 2t4), (g + 8, 8 + 2t4), (g + 8, 9 + 2t4): element e has row + 8 if e & 2, k + 8 if e & 4,
//!   k + 1 if e & 1 — wgmma's A fragment, two bytes a register.
//! - int4 (u = q + 8): 4 KB a chunk = [w 4][j 2][lane 32][16 B]; word u of (w, lane, j) is k16 step 4j + u, its
//!   element e (the 8-bit order) in nibble e / 2, or e / 2 + 4 where e is odd (register p = nibbles p, p + 4);
//!   the group scales (g128) as [t][c][64 rows] f16.
use crate::error::{Error, Result};
use crate::quant::WeightFormat;

/// Rows of a weight tile (wgmma's M).
pub const TILE: usize = 64;
/// k per chunk (pipeline stage).
pub const KC: usize = 128;
/// The largest decode pass it runs (wgmma's N; fewer rows are zero-filled by the TMA).
pub const MAX_ROWS: usize = 64;
/// Threads of a block: one consumer warpgroup and one producer warp.
pub const THREADS: u32 = 160;

/// What `TRTFORGE_WQ` asks for (session 38: on by default on cc 9.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `TRTFORGE_WQ=0`: every quantized decode pass reads the f16 copy through cuBLASLt.
    Off,
    /// Unset: the measured default — gate/up and down only (qkv / o gained nothing inside the step: session 38
    /// call 2), int4 g128 from [`MIN_ROWS_INT4`] rows, int8 / fp8 from [`MIN_ROWS_8BIT`] rows.
    Default,
    /// `TRTFORGE_WQ=1`: every layer linear at every 9..=64-row decode pass (session 37's opt-in).
    All,
}

/// The fewest rows at which int8 / fp8 linears take it by default: the kernel's cost hardly depends on the rows (64 a
/// tile, the rest zero-filled) while cuBLASLt's on the f16 copy grows with them; at 16 and 32 rows (every layer
/// linear on it) the step lost 0.7–4.7 % (session 38 call 2), at 64 it gains 9 % (call 3).
pub const MIN_ROWS_8BIT: usize = 33;
/// The same for int4 g128: with gate/up and down on it, 16 rows lost 2.1 % of the step, 32 rows gained 7.3 %
/// (session 38 call 3; by the step times, break-even near 20 rows).
pub const MIN_ROWS_INT4: usize = 24;

/// [`Mode`] from `TRTFORGE_WQ`; any value other than `0` or `1` is an error.
pub fn mode() -> Result<Mode> {
    match std::env::var("TRTFORGE_WQ").as_deref() {
        Err(_) => Ok(Mode::Default),
        Ok("0") => Ok(Mode::Off),
        Ok("1") => Ok(Mode::All),
        Ok(v) => {
            Err(Error::Invalid(format!("TRTFORGE_WQ={v:?}: use 0 (off), 1 (every layer linear) or leave it unset")))
        }
    }
}

/// Whether the module should hold it (not [`Mode::Off`]; an invalid `TRTFORGE_WQ` is reported by [`mode`] at load).
pub fn wanted() -> bool {
    !matches!(mode(), Ok(Mode::Off))
}

/// The fewest rows of a decode pass at which a `fmt` linear takes it under `mode` (passes of up to `GEMV_MAX_T`
/// rows run the GEMV whatever this says).
pub fn min_rows(fmt: WeightFormat, mode: Mode) -> usize {
    match (mode, fmt) {
        (Mode::Default, WeightFormat::I8 | WeightFormat::F8) => MIN_ROWS_8BIT,
        (Mode::Default, WeightFormat::I4 { .. }) => MIN_ROWS_INT4,
        _ => 1,
    }
}

/// The formats it reads.
pub fn format_ok(fmt: WeightFormat) -> bool {
    matches!(fmt, WeightFormat::I8 | WeightFormat::F8 | WeightFormat::I4 { group: 128 })
}

/// Whether an (n × k) linear of `fmt` fits: whole 64-row tiles and 128-k chunks.
pub fn fits(fmt: WeightFormat, n: usize, k: usize) -> bool {
    format_ok(fmt) && n > 0 && k > 0 && n % TILE == 0 && k % KC == 0
}

/// The kernel for `fmt` with `nst` ring slots.
pub fn kernel_name(fmt: WeightFormat, nst: usize) -> Option<&'static str> {
    Some(match (fmt, nst) {
        (WeightFormat::I8, 3) => "wq_i8_3",
        (WeightFormat::I8, 4) => "wq_i8_4",
        (WeightFormat::I4 { group: 128 }, 3) => "wq_i4_3",
        (WeightFormat::I4 { group: 128 }, 4) => "wq_i4_4",
        (WeightFormat::F8, 3) => "wq_f8_3",
        (WeightFormat::F8, 4) => "wq_f8_4",
        _ => return None,
    })
}

/// Every kernel of kernels_wq.cu.
pub const KERNELS: [&str; 6] = ["wq_i8_3", "wq_i8_4", "wq_i4_3", "wq_i4_4", "wq_f8_3", "wq_f8_4"];

/// Weight bytes of one tile's chunk.
pub fn chunk_bytes(fmt: WeightFormat) -> usize {
    if matches!(fmt, WeightFormat::I4 { .. }) {
        4096
    } else {
        8192
    }
}

/// Dynamic shared memory of a block with `nst` slots: alignment slack + barriers, then the slots (x's two
/// 8 KB boxes, the chunk, int4's 128 scale bytes; 1 KB aligned), or the 64 × 68 f32 partial tile and the 64 rows'
/// RMSNorm scales (`TRTFORGE_WQ_NORM`).
pub fn smem(fmt: WeightFormat, nst: usize) -> usize {
    let sc = if matches!(fmt, WeightFormat::I4 { .. }) { 128 } else { 0 };
    let slot = (16384 + chunk_bytes(fmt) + sc).next_multiple_of(1024);
    2048 + (nst * slot).max(64 * 68 * 4 + 64 * 4)
}

/// Launch shape of an (n × k) linear on `sms` SMs: (K slices = cluster size, ring slots). Matrices with at least
/// as many 64-row tiles as SMs run whole-K; smaller ones split K four (else two) ways so that every SM streams;
/// 3 slots where a slice has at most 4 chunks, else 4 (session 37 call 9's best per shape).
pub fn shape(n: usize, k: usize, sms: usize) -> (usize, usize) {
    let (tiles, nch) = (n / TILE, k / KC);
    let slices =
        if tiles >= sms { 1 } else { [4usize, 2].into_iter().find(|&s| nch >= 2 * s && slices_ok(k, s)).unwrap_or(1) };
    let per = nch.div_ceil(slices);
    (slices, if per <= 4 { 3 } else { 4 })
}

/// Whether `slices` K slices of a k-long linear each get at least one 128-k chunk (the last one too).
pub fn slices_ok(k: usize, slices: usize) -> bool {
    let nch = k / KC;
    (1..=8).contains(&slices) && (slices - 1) * nch.div_ceil(slices) < nch
}

/// How a launch writes its sums (the kernels' `mode`, kernels_wq.cu `WQ_OUT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    /// y (rows, n) f32.
    F32 = 0,
    /// Added into y (rows, n) f32: o / down into the residual stream.
    Add = 1,
    /// y (rows, n) f16 (qkv / gate/up where the GEMM path writes f16 outputs: `TRTFORGE_WQ_F16Y=1`).
    F16 = 2,
    /// gate/up packed by [`pair_perm`]: m (rows, n / 2) = silu(gate) · up as the activation type, the SwiGLU
    /// kernel folded into the GEMM (`TRTFORGE_WQ_SWIGLU=1`).
    Swiglu = 3,
    /// qkv packed by [`pair_perm`]: RoPE into q (f32 and its act copy) and the K / V append into the cache, as
    /// `rope_append` does for each (rotation) pair of y's row — that kernel folded into the GEMM
    /// (`TRTFORGE_WQ_ROPE=1`).
    Qkv = 4,
}

/// An opt-in switch (`0` / unset off, `1` on; anything else is an error naming it).
fn opt_in(var: &str) -> Result<bool> {
    match std::env::var(var).as_deref() {
        Err(_) | Ok("0") => Ok(false),
        Ok("1") => Ok(true),
        Ok(v) => Err(Error::Invalid(format!("{var}={v:?}: use 1 (on) or 0 (off)"))),
    }
}

/// `TRTFORGE_WQ_SWIGLU=1` (session 39, opt-in, not yet measured): gate/up's decode passes on this kernel write the
/// SwiGLU output straight from their accumulators ([`Out::Swiglu`]) — one kernel and the f32 y round trip less a
/// layer.
pub fn swiglu_wanted() -> Result<bool> {
    opt_in("TRTFORGE_WQ_SWIGLU")
}

/// `TRTFORGE_WQ_ROPE=1` (session 39, opt-in, not yet measured): qkv's decode passes on this kernel apply RoPE and
/// append K / V to the cache from their accumulators ([`Out::Qkv`]) — `rope_append` and the y round trip less a
/// layer. qkv takes wq only where `TRTFORGE_WQ=1` or `TRTFORGE_WQ_ROLES` puts it on.
pub fn rope_wanted() -> Result<bool> {
    opt_in("TRTFORGE_WQ_ROPE")
}

/// `TRTFORGE_WQ_NORM=1` (session 39, opt-in, not yet measured): RMSNorm folded across a pair of wq GEMMs — the o /
/// down epilogue also writes x' = f16(h · w_norm) and per-(tile, row) Σ h², the next qkv / gate/up scales its sums by
/// the row's rsqrt(mean h² + eps) — the `rmsnorm_b` launch less before each such pair.
pub fn norm_wanted() -> Result<bool> {
    opt_in("TRTFORGE_WQ_NORM")
}

/// `TRTFORGE_WQ_F16Y=1` (session 38's next/wq-f16y.patch, opt-in, not yet measured): qkv (and gate/up when not
/// [`swiglu_wanted`]) write f16 outputs where the GEMM path does (`pf.f16y`), as cuBLASLt's `hsh` kernels do.
pub fn f16y_wanted() -> Result<bool> {
    opt_in("TRTFORGE_WQ_F16Y")
}

/// The row order of a matrix packed for the row-pair outputs ([`Out::Swiglu`], [`Out::Qkv`]): `perm[p]` is the
/// stored row at packed row `p`. Stored rows come in pairs (2j, 2j + 1): gate/up interleave gate and up, qkv's
/// q / k rows are stored as RoPE's rotation pairs (kernels.cu `qkv_store`), v's in order; in packed tile `t`, row
/// 16w + g (w < 4, g < 8) holds row 2j of pair j = 32t + 8w + g and row 16w + g + 8 its row 2j + 1, so that one
/// lane's accumulators hold both (wgmma's rows g and g + 8 of warp w). `n` a multiple of 64.
pub fn pair_perm(n: usize) -> Vec<usize> {
    let mut perm = vec![0; n];
    for row in 0..n {
        let (j, up) = (row / 2, row % 2);
        let (t, jj) = (j / 32, j % 32);
        perm[t * TILE + 16 * (jj / 8) + 8 * up + jj % 8] = row;
    }
    perm
}

/// `data` as rows of `row_len` elements, reordered so that row p of the result is row `perm[p]` of `data`.
pub fn permute_rows<T: Copy>(data: &[T], row_len: usize, perm: &[usize]) -> Vec<T> {
    perm.iter().flat_map(|&r| data[r * row_len..(r + 1) * row_len].iter().copied()).collect()
}

/// Where element (row, k) sits in its fragment: (tile, chunk, warp, lane, k16 step, element 0..8 in the 8-bit order).
fn frag(row: usize, k: usize) -> (usize, usize, usize, usize, usize, usize) {
    let (r, kk) = (row % TILE, k % KC);
    let (g, hi, k16) = (r % 8, (r % 16) / 8, kk % 16);
    let (hk, t4, odd) = (k16 / 8, (k16 % 8) / 2, k16 % 2);
    (row / TILE, k / KC, r / 16, g * 4 + t4, kk / 16, odd | (hi << 1) | (hk << 2))
}

/// Position of element (row, k) in the 8-bit pack of an n × k matrix: the byte index.
fn pos8(row: usize, k: usize, nch: usize) -> usize {
    let (t, c, w, lane, step, e) = frag(row, k);
    (t * nch + c) * 8192 + (w * 4 + step / 2) * 512 + lane * 16 + 8 * (step % 2) + e
}

/// Position of element (row, k) in the int4 pack: (byte index of its 32-bit word, nibble).
fn pos4(row: usize, k: usize, nch: usize) -> (usize, usize) {
    let (t, c, w, lane, step, e) = frag(row, k);
    let word = (t * nch + c) * 4096 + (w * 2 + step / 4) * 512 + lane * 16 + 4 * (step % 4);
    (word, if e % 2 == 1 { e / 2 + 4 } else { e / 2 })
}

/// The pack of an (n × k) matrix of 8-bit codes stored row-major (the engine's int8 / fp8 layout).
pub fn pack8(codes: &[u8], n: usize, k: usize) -> Vec<u8> {
    let nch = k / KC;
    let mut out = vec![0u8; n * k];
    for row in 0..n {
        for (kk, &b) in codes[row * k..(row + 1) * k].iter().enumerate() {
            out[pos8(row, kk, nch)] = b;
        }
    }
    out
}

/// The pack of an (n × k) int4 matrix in the engine's layout (pack.rs: each little-endian 32-bit word holds 8
/// consecutive elements of a row, element 2j at nibble j and 2j + 1 at nibble j + 4, stored as q + 8).
pub fn pack4(data: &[u8], n: usize, k: usize) -> Vec<u8> {
    let nch = k / KC;
    let mut out = vec![0u8; n * k / 2];
    for row in 0..n {
        for kk in 0..k {
            let wi = (row * k + kk) / 8 * 4;
            let word = u32::from_le_bytes([data[wi], data[wi + 1], data[wi + 2], data[wi + 3]]);
            let e = kk % 8;
            let nib = if e % 2 == 1 { e / 2 + 4 } else { e / 2 };
            let u = (word >> (4 * nib)) & 15;
            let (dw, dn) = pos4(row, kk, nch);
            let mut v = u32::from_le_bytes([out[dw], out[dw + 1], out[dw + 2], out[dw + 3]]);
            v |= u << (4 * dn);
            out[dw..dw + 4].copy_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// int4 g128 scales (n, k / 128) row-major → [t][c][64 rows].
pub fn pack_scales4<T: Copy + Default>(scales: &[T], n: usize, k: usize) -> Vec<T> {
    let nch = k / KC;
    let mut out = vec![T::default(); n * nch];
    for row in 0..n {
        for c in 0..nch {
            out[((row / TILE) * nch + c) * TILE + row % TILE] = scales[row * nch + c];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn slices_ok_gives_every_slice_a_chunk() {
        // chunks of 128 k: 2048 → 16 (8 slices of 2), 5632 → 44 (8 of 6, the last 2), 640 → 5 (4 slices of 2 leave
        // the last one none; 3 of 2 leave it 1), 1536 → 12.
        assert!(slices_ok(2048, 8) && slices_ok(2048, 4) && slices_ok(2048, 1));
        assert!(slices_ok(5632, 8) && slices_ok(5632, 4));
        assert!(!slices_ok(640, 4) && slices_ok(640, 3));
        assert!(slices_ok(1536, 4) && !slices_ok(128, 2));
        assert!(!slices_ok(2048, 0) && !slices_ok(2048, 9));
    }

    use super::*;

    // The fragment order, written out independently of pos8 / pos4: for each packed position, the (row, k) the
    // kernel's lane expects there (the PTX wgmma / mma.m16n8k16 A-fragment table).
    fn expect8(idx: usize, nch: usize) -> (usize, usize) {
        let (chunk, rest) = (idx / 8192, idx % 8192);
        let (t, c) = (chunk / nch, chunk % nch);
        let (wj, rest) = (rest / 512, rest % 512);
        let (w, j) = (wj / 4, wj % 4);
        let (lane, b) = (rest / 16, rest % 16);
        let (h, e) = (b / 8, b % 8);
        let step = 2 * j + h;
        let (g, t4) = (lane / 4, lane % 4);
        let row = t * 64 + 16 * w + g + if e & 2 != 0 { 8 } else { 0 };
        let k = c * 128 + step * 16 + if e & 4 != 0 { 8 } else { 0 } + 2 * t4 + (e & 1);
        (row, k)
    }

    #[test]
    fn pack8_puts_every_code_at_its_fragment_slot() {
        let (n, k) = (128, 256);
        let codes: Vec<u8> = (0..n * k).map(|i| ((i / k) * 37 + (i % k) * 11) as u8).collect();
        let p = pack8(&codes, n, k);
        let mut seen = vec![false; n * k];
        for (idx, &b) in p.iter().enumerate() {
            let (row, kk) = expect8(idx, k / KC);
            assert_eq!(b, codes[row * k + kk], "byte {idx} should hold ({row}, {kk})");
            assert!(!seen[row * k + kk]);
            seen[row * k + kk] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn pack4_puts_every_nibble_at_its_fragment_slot() {
        let (n, k) = (64, 384);
        // the engine's int4 layout of u(row, k) = (3 row + 5 k) % 16
        let u = |row: usize, kk: usize| ((3 * row + 5 * kk) % 16) as u32;
        let mut data = vec![0u8; n * k / 2];
        for row in 0..n {
            for w in 0..k / 8 {
                let mut word = 0u32;
                for j in 0..4 {
                    word |= u(row, 8 * w + 2 * j) << (4 * j);
                    word |= u(row, 8 * w + 2 * j + 1) << (4 * j + 16);
                }
                let at = (row * k + 8 * w) / 2;
                data[at..at + 4].copy_from_slice(&word.to_le_bytes());
            }
        }
        let p = pack4(&data, n, k);
        let nch = k / KC;
        for (wi, ch) in p.chunks(4).enumerate() {
            let word = u32::from_le_bytes([ch[0], ch[1], ch[2], ch[3]]);
            let at = wi * 4;
            let (chunk, rest) = (at / 4096, at % 4096);
            let (t, c) = (chunk / nch, chunk % nch);
            let (wj, rest) = (rest / 512, rest % 512);
            let (w, j) = (wj / 2, wj % 2);
            let (lane, uu) = (rest / 16, (rest % 16) / 4);
            let step = 4 * j + uu;
            let (g, t4) = (lane / 4, lane % 4);
            for p in 0..4 {
                for (e, nib) in [(2 * p, p), (2 * p + 1, p + 4)] {
                    let row = t * 64 + 16 * w + g + if e & 2 != 0 { 8 } else { 0 };
                    let kk = c * 128 + step * 16 + if e & 4 != 0 { 8 } else { 0 } + 2 * t4 + (e & 1);
                    assert_eq!(
                        (word >> (4 * nib)) & 15,
                        u(row, kk),
                        "word {wi} nibble {nib} should hold ({row}, {kk})"
                    );
                }
            }
        }
    }

    #[test]
    fn pair_perm_puts_gate_and_up_in_one_lane() {
        // For every packed position: the lane's rows g and g + 8 of warp w must be gate and up of the output the
        // kernel's SwiGLU epilogue writes (kernels_wq.cu `swi`: 32·tile + 8·(r / 16) + r % 8 for r = 16w + g).
        let n = 256;
        let perm = pair_perm(n);
        let mut seen = vec![false; n];
        for (p, &row) in perm.iter().enumerate() {
            let (t, r) = (p / 64, p % 64);
            let (w, up, g) = (r / 16, (r % 16) / 8, r % 8);
            let j = 32 * t + 8 * w + g;
            assert_eq!(row, 2 * j + up, "packed row {p}");
            assert!(!seen[row]);
            seen[row] = true;
        }
        // the rows move as wholes: a 3-element row stays together
        let data: Vec<u32> = (0..n as u32 * 3).collect();
        let moved = permute_rows(&data, 3, &perm);
        assert_eq!(&moved[3 * 9..3 * 10], &data[3 * perm[9]..3 * perm[9] + 3]);
        assert_eq!(moved.len(), data.len());
    }

    #[test]
    fn swiglu_epilogue_model_gives_silu_gate_times_up() {
        // A model of the kernel's S == 1 epilogue over one tile's accumulators (the fragment table of the pack
        // tests): with the permuted weights, accumulator i of (warp, lane) is y[stored row perm[...]], and the
        // SwiGLU it writes must land at m[t, j] = silu(y[t, 2j]) · y[t, 2j + 1].
        let (n, rows) = (128usize, 64usize);
        let y = |t: usize, row: usize| ((t * 131 + row * 17) % 23) as f32 / 7.0 - 1.5;
        let silu = |v: f32| v / (1.0 + (-v).exp());
        let perm = pair_perm(n);
        let mut m = vec![f32::NAN; rows * n / 2];
        for tile in 0..n / 64 {
            for warp in 0..4 {
                for lane in 0..32 {
                    let (g, t4) = (lane / 4, lane % 4);
                    for i in (0..32).filter(|i| i & 2 == 0) {
                        let t = 8 * (i >> 2) + 2 * t4 + (i & 1);
                        let r = 16 * warp + g;
                        let (gate, up) = (y(t, perm[tile * 64 + r]), y(t, perm[tile * 64 + r + 8]));
                        m[t * n / 2 + tile * 32 + 8 * (r >> 4) + (r & 7)] = silu(gate) * up;
                    }
                }
            }
        }
        for t in 0..rows {
            for j in 0..n / 2 {
                assert_eq!(m[t * n / 2 + j], silu(y(t, 2 * j)) * y(t, 2 * j + 1), "m[{t}, {j}]");
            }
        }
    }

    #[test]
    fn output_modes_match_the_kernels_defines() {
        // launch.rs passes `Out as i32` as the kernels' `mode`: each value must be kernels_wq.cu's WQ_OUT_* define.
        let src = include_str!("kernels_wq.cu");
        for (name, out) in
            [("F32", Out::F32), ("ADD", Out::Add), ("F16", Out::F16), ("SWIGLU", Out::Swiglu), ("QKV", Out::Qkv)]
        {
            let line = format!("#define WQ_OUT_{name} {}\n", out as i32);
            assert!(src.contains(&line), "kernels_wq.cu lacks `{}`", line.trim());
        }
    }

    #[test]
    fn norm_fold_gives_rmsnorm_then_the_gemm() {
        // A model of TRTFORGE_WQ_NORM's two halves (kernels_wq.cu `nm.out` / `nm.in`) on f64: the Add epilogue
        // writes x' = h · w and part[tile · 64 + t] = Σ of its 64 columns' h²; the next GEMM scales Σ_k x'·W by
        // 1 / sqrt(Σ_tiles part / H + eps). Independent reference: x = h · w / rms(h), then the GEMM.
        let (h_dim, rows, n, eps) = (256usize, 5usize, 3usize, 1e-5f64);
        let h = |t: usize, k: usize| ((t * 37 + k * 11) % 29) as f64 / 5.0 - 2.7;
        let w = |k: usize| 0.5 + (k % 7) as f64 / 10.0;
        let wm = |o: usize, k: usize| ((o * 13 + k * 3) % 17) as f64 / 8.0 - 1.0;
        let mut part = vec![0f64; h_dim];
        for tile in 0..h_dim / 64 {
            for t in 0..rows {
                part[tile * 64 + t] = (0..64).map(|c| h(t, tile * 64 + c).powi(2)).sum();
            }
        }
        for t in 0..rows {
            let inv = 1.0 / ((0..h_dim / 64).map(|q| part[q * 64 + t]).sum::<f64>() / h_dim as f64 + eps).sqrt();
            let rms = ((0..h_dim).map(|k| h(t, k).powi(2)).sum::<f64>() / h_dim as f64 + eps).sqrt();
            for o in 0..n {
                let folded = inv * (0..h_dim).map(|k| h(t, k) * w(k) * wm(o, k)).sum::<f64>();
                let reference: f64 = (0..h_dim).map(|k| h(t, k) * w(k) / rms * wm(o, k)).sum();
                assert!((folded - reference).abs() <= 1e-9 * reference.abs().max(1.0), "row {t} out {o}");
            }
        }
    }

    #[test]
    fn every_kernel_has_a_name() {
        // (that each is an instance of kernels_wq.cu: kernels.rs `wq_source_holds_every_kernel_only_where_asked`)
        let fmts = [WeightFormat::I8, WeightFormat::F8, WeightFormat::I4 { group: 128 }];
        let named: Vec<_> = fmts.iter().flat_map(|&f| [3, 4].map(|n| kernel_name(f, n).unwrap())).collect();
        assert!(KERNELS.iter().all(|k| named.contains(k)) && named.len() == KERNELS.len());
        assert_eq!(kernel_name(WeightFormat::F16, 3), None);
        assert_eq!(kernel_name(WeightFormat::I8, 5), None);
    }

    #[test]
    fn scales_and_shapes() {
        let (n, k) = (128, 256);
        let s: Vec<u16> = (0..n * 2).map(|i| i as u16).collect();
        let p = pack_scales4(&s, n, k);
        assert_eq!(p[64], s[1]); // tile 0, chunk 1, row 0
        assert_eq!(p[2 * 64 + 5], s[(64 + 5) * 2]); // tile 1, chunk 0, row 5
        assert!(fits(WeightFormat::I4 { group: 128 }, 2560, 2048) && !fits(WeightFormat::I4 { group: 64 }, 2560, 2048));
        assert!(!fits(WeightFormat::F16, 2048, 2048) && !fits(WeightFormat::I8, 576, 576));
        // TinyLlama on 132 SMs: session 37 call 9's best per shape
        assert_eq!(shape(2560, 2048, 132), (4, 3));
        assert_eq!(shape(2048, 2048, 132), (4, 3));
        assert_eq!(shape(11264, 2048, 132), (1, 4));
        assert_eq!(shape(2048, 5632, 132), (4, 4));
        for fmt in [WeightFormat::I8, WeightFormat::F8, WeightFormat::I4 { group: 128 }] {
            for nst in [3, 4] {
                assert!(smem(fmt, nst) <= 227 * 1024 && kernel_name(fmt, nst).is_some());
            }
        }
    }
}
