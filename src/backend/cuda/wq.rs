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
/// Threads of a block: one consumer warpgroup and one producer warp (two or four consumer warpgroups lost:
/// sessions 47 / 49, docs/benchmarks/2026-12-05-h200-session49).
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

/// `TRTFORGE_WQ_COPIES`: the copies a pipeline stage takes (session 47) — the kernel's `cm` bits. A stage was 4
/// copies (x's two 2-D boxes, the codes, int4's scales); unset or `2` takes x as one 3-D box ([`CM_X3`]) and int4's
/// scales inline behind each chunk's codes ([`CM_INLINE`], [`pack4_inline`]): 233 instead of 281 ns a stage in
/// isolation (docs/benchmarks/2026-12-05-h200-session47, probe/), within ±1 % inside the step; `4` is the
/// session-37 stage. Anything else is an error.
pub fn copy_mode() -> Result<i32> {
    parse_copy_mode(std::env::var("TRTFORGE_WQ_COPIES").ok().as_deref())
}

fn parse_copy_mode(v: Option<&str>) -> Result<i32> {
    match v {
        None | Some("2") => Ok(CM_X3 | CM_INLINE),
        Some("4") => Ok(0),
        Some(v) => {
            Err(Error::Invalid(format!("TRTFORGE_WQ_COPIES={v:?}: use 2 (the default) or 4 (session 37's stage)")))
        }
    }
}

/// `cm` bit: x's stage is one 3-D TMA box (gpu.rs `tensor_map_f16_sw128_k2`).
pub const CM_X3: i32 = 1;
/// `cm` bit: int4's group scales follow each chunk's codes in the weights ([`pack4_inline`]; 8-bit formats ignore it).
pub const CM_INLINE: i32 = 2;

/// Bytes of one int4 chunk in [`pack4_inline`]: the codes, then the 64 rows' f16 scales of that 128-k group.
pub const CHUNK4_INLINE: usize = 4096 + 128;

/// Whether an (n × k) linear of `fmt` fits: whole 64-row tiles and 128-k chunks.
pub fn fits(fmt: WeightFormat, n: usize, k: usize) -> bool {
    format_ok(fmt) && n > 0 && k > 0 && n % TILE == 0 && k % KC == 0
}

/// The ring depths there are kernels for (`NST` of kernels_wq.cu): 3 or 4 by [`shape`]; 2, 5 and 6 (session 46)
/// only through `TRTFORGE_WQ_SHAPE` — two slots (45 / 51 KB of shared memory) let three or four blocks share an SM,
/// for K splits that give every SM several independent tiles; five or six keep more bytes in flight a block (int4
/// with five: two blocks an SM still fit).
pub const SLOTS: std::ops::RangeInclusive<usize> = 2..=6;

/// Every kernel of kernels_wq.cu: for each ring depth of [`SLOTS`], int8, int4 g128, fp8.
pub const KERNELS: [&str; 15] = [
    "wq_i8_2", "wq_i4_2", "wq_f8_2", "wq_i8_3", "wq_i4_3", "wq_f8_3", "wq_i8_4", "wq_i4_4", "wq_f8_4", "wq_i8_5",
    "wq_i4_5", "wq_f8_5", "wq_i8_6", "wq_i4_6", "wq_f8_6",
];

/// The kernel for `fmt` with `nst` ring slots.
pub fn kernel_name(fmt: WeightFormat, nst: usize) -> Option<&'static str> {
    let f = match fmt {
        WeightFormat::I8 => 0,
        WeightFormat::I4 { group: 128 } => 1,
        WeightFormat::F8 => 2,
        _ => return None,
    };
    SLOTS.contains(&nst).then(|| KERNELS[3 * (nst - SLOTS.start()) + f])
}

/// Weight bytes of one tile's chunk.
pub fn chunk_bytes(fmt: WeightFormat) -> usize {
    if matches!(fmt, WeightFormat::I4 { .. }) {
        4096
    } else {
        8192
    }
}

/// Dynamic shared memory of a block with `nst` slots: alignment slack + barriers, then the slots (x's two
/// 8 KB boxes, the chunk, int4's 128 scale bytes; 1 KB aligned), or the 64 × 68 f32 partial tile.
pub fn smem(fmt: WeightFormat, nst: usize) -> usize {
    let sc = if matches!(fmt, WeightFormat::I4 { .. }) { 128 } else { 0 };
    let slot = (16384 + chunk_bytes(fmt) + sc).next_multiple_of(1024);
    2048 + (nst * slot).max(64 * 68 * 4)
}

/// Launch shape of an (n × k) linear on `sms` SMs: (K slices = cluster size, ring slots). Matrices with at least
/// as many 64-row tiles as SMs run whole-K; smaller ones split K four (else two) ways so that every SM streams;
/// 3 slots where a slice has at most 4 chunks, else 4 (session 37 call 9's best per shape).
pub fn shape(n: usize, k: usize, sms: usize) -> (usize, usize) {
    let (tiles, nch) = (n / TILE, k / KC);
    let slices =
        if tiles >= sms { 1 } else { [4usize, 2].into_iter().find(|&s| nch >= 2 * s && slices_ok(k, s)).unwrap_or(1) };
    (slices, slots(nch.div_ceil(slices)))
}

/// Ring slots for a K slice of `per` 128-k chunks: 3 up to 4 chunks, else 4.
pub fn slots(per: usize) -> usize {
    if per <= 4 {
        3
    } else {
        4
    }
}

/// Whether `slices` K slices of a k-long linear each get at least one 128-k chunk (the last one too).
pub fn slices_ok(k: usize, slices: usize) -> bool {
    let nch = k / KC;
    (1..=8).contains(&slices) && (slices - 1) * nch.div_ceil(slices) < nch
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

/// int4 codes ([`pack4`]) with each chunk's group scales behind it: chunk (t, c) = 4,096 code bytes, then the scales of
/// rows 64t .. 64t + 63 for group c as little-endian f16 — [`CHUNK4_INLINE`] bytes, in (t, c) order, so that one copy
/// fills a ring slot's codes and scales (`cm` & [`CM_INLINE`]).
pub fn pack4_inline(data: &[u8], scales: &[half::f16], n: usize, k: usize) -> Vec<u8> {
    let nch = k / KC;
    let codes = pack4(data, n, k);
    let sc = pack_scales4(scales, n, k);
    let mut out = Vec::with_capacity(n / TILE * nch * CHUNK4_INLINE);
    for (ch, s) in codes.chunks_exact(4096).zip(sc.chunks_exact(TILE)) {
        out.extend_from_slice(ch);
        out.extend(s.iter().flat_map(|v| v.to_le_bytes()));
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
    fn pack4_inline_puts_each_groups_scales_behind_its_codes() {
        let (n, k) = (128, 384);
        let nch = k / KC;
        let data: Vec<u8> = (0..n * k / 2).map(|i| (i * 7 % 251) as u8).collect();
        let scales: Vec<half::f16> = (0..n * nch).map(|i| half::f16::from_f32(0.5 + i as f32)).collect();
        let p = pack4_inline(&data, &scales, n, k);
        let codes = pack4(&data, n, k);
        assert_eq!(p.len(), n / TILE * nch * CHUNK4_INLINE);
        for t in 0..n / TILE {
            for c in 0..nch {
                let at = (t * nch + c) * CHUNK4_INLINE;
                assert_eq!(&p[at..at + 4096], &codes[(t * nch + c) * 4096..][..4096], "codes of tile {t} chunk {c}");
                for r in 0..TILE {
                    let v = half::f16::from_le_bytes([p[at + 4096 + 2 * r], p[at + 4097 + 2 * r]]);
                    assert_eq!(v, scales[(t * TILE + r) * nch + c], "scale of row {} group {c}", t * TILE + r);
                }
            }
        }
    }

    #[test]
    fn copy_mode_parses_its_variable() {
        for (v, want) in
            [(None, Some(CM_X3 | CM_INLINE)), (Some("2"), Some(3)), (Some("4"), Some(0)), (Some("3"), None)]
        {
            assert_eq!(parse_copy_mode(v).ok(), want, "{v:?}");
        }
        assert!(parse_copy_mode(Some("")).unwrap_err().to_string().contains("TRTFORGE_WQ_COPIES"));
    }

    #[test]
    fn every_kernel_has_a_name() {
        // (that each is an instance of kernels_wq.cu: kernels.rs `wq_source_holds_every_kernel_only_where_asked`)
        let fmts = [WeightFormat::I8, WeightFormat::F8, WeightFormat::I4 { group: 128 }];
        let named: Vec<_> = fmts.iter().flat_map(|&f| SLOTS.map(move |n| kernel_name(f, n).unwrap())).collect();
        assert!(KERNELS.iter().all(|k| named.contains(k)) && named.len() == KERNELS.len());
        // each name says its format and depth
        for (f, tag) in fmts.iter().zip(["i8", "f8", "i4"]) {
            for n in SLOTS {
                assert_eq!(kernel_name(*f, n), Some(format!("wq_{tag}_{n}").as_str()));
            }
        }
        assert_eq!(kernel_name(WeightFormat::F16, 3), None);
        assert_eq!(kernel_name(WeightFormat::I8, 7), None);
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
            for nst in SLOTS {
                assert!(smem(fmt, nst) <= 227 * 1024 && kernel_name(fmt, nst).is_some());
            }
            // two slots: four blocks' shared memory fit an SM (228 KB, 1 KB of it reserved a block)
            assert!(4 * (smem(fmt, 2) + 1024) <= 228 * 1024, "{fmt:?}");
        }
        // int4 with five slots: two blocks an SM
        assert!(2 * (smem(WeightFormat::I4 { group: 128 }, 5) + 1024) <= 228 * 1024);
    }
}
