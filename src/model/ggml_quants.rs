//! ggml tensor types and their dequantization to f32, value for value as ggml's reference C
//! (`dequantize_row_*` in `ggml-quants.c`) computes them: the same block layouts, the same scale
//! unpacking, and the same order of f32 operations (so results match bit for bit; no fused
//! multiply-add).
//!
//! Block layouts (little-endian, `f16` = IEEE half, QK_K = 256 elements per super-block):
//! - `Q4_0`  (32): f16 d, 16 B nibbles; `w = d·(q − 8)`
//! - `Q4_1`  (32): f16 d, f16 m, 16 B nibbles; `w = d·q + m`
//! - `Q5_0`  (32): f16 d, u32 qh (5th bits), 16 B nibbles; `w = d·(q − 16)`
//! - `Q5_1`  (32): f16 d, f16 m, u32 qh, 16 B nibbles; `w = d·q + m`
//! - `Q8_0`  (32): f16 d, 32 × i8; `w = d·q`
//! - `IQ4_NL`(32): f16 d, 16 B nibbles indexing a fixed non-linear table; `w = d·table[q]`
//! - `Q2_K` (256): 16 B scales (4-bit scale | 4-bit min per 16), 64 B 2-bit quants, f16 d, f16 dmin
//! - `Q3_K` (256): 32 B high-bit mask, 64 B 2-bit quants, 12 B packed 6-bit scales, f16 d
//! - `Q4_K` (256): f16 d, f16 dmin, 12 B packed 6-bit scales/mins (8 of each), 128 B nibbles
//! - `Q5_K` (256): as Q4_K plus 32 B of 5th bits before the nibbles
//! - `Q6_K` (256): 128 B low nibbles, 64 B high 2-bit pairs, 16 × i8 scales, f16 d
//! - `Q8_K` (256): f32 d, 256 × i8, 16 × i16 block sums (unused here); `w = d·q`
//! - `IQ4_XS`(256): f16 d, u16 high scale bits (2 per 32), 4 B low scale nibbles, 128 B nibbles indexing the
//!   IQ4_NL table; sub-block `i` of 32 has the 6-bit scale `l` and `w = (d·(l − 32))·table[q]`
//! - `IQ2_XXS` / `IQ2_XS` / `IQ2_S` / `IQ3_XXS` / `IQ3_S` (256): groups of 8 (IQ3: two rows of 4) weights are one
//!   row of a fixed code book (`iq_grids.rs`) with 8 sign bits (XXS / XS: 7 stored, the 8th makes the parity even)
//!   and a 4-bit scale a 16 or 32 weights; `w = db·grid[j]·(±1)`, db as ggml computes it per type (below)
//! - `IQ1_S` / `IQ1_M` (256): groups of 8 are a row of the 2048-row grid of −1 / 0 / 1 with a shift of ±1/8 and a
//!   3-bit scale; `w = dl·(grid[j] + δ)`, `dl = d·(2s + 1)` (IQ1_M keeps its f16 d in the scales' top nibbles)
//!
//! In every 32-element format, weights 0..15 are the low nibbles of bytes 0..15 and 16..31 the
//! high nibbles.
use super::iq_grids;
use half::{bf16, f16};

/// Elements per block of the 32-element block types.
const QK: usize = 32;
/// Elements per super-block of the K-quant types.
pub const QK_K: usize = 256;

/// ggml's IQ4_NL code book (`kvalues_iq4nl`).
const IQ4_NL_VALUES: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// The ggml tensor types trtforge can dequantize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GgmlType {
    F32,
    F16,
    Bf16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    Q8K,
    Iq4Nl,
    Iq4Xs,
    Iq2Xxs,
    Iq2Xs,
    Iq2S,
    Iq3Xxs,
    Iq3S,
    Iq1S,
    Iq1M,
}

impl GgmlType {
    /// Every supported type, for error messages.
    pub const ALL: [GgmlType; 23] = [
        Self::F32,
        Self::F16,
        Self::Bf16,
        Self::Q4_0,
        Self::Q4_1,
        Self::Q5_0,
        Self::Q5_1,
        Self::Q8_0,
        Self::Q2K,
        Self::Q3K,
        Self::Q4K,
        Self::Q5K,
        Self::Q6K,
        Self::Q8K,
        Self::Iq4Nl,
        Self::Iq4Xs,
        Self::Iq2Xxs,
        Self::Iq2Xs,
        Self::Iq2S,
        Self::Iq3Xxs,
        Self::Iq3S,
        Self::Iq1S,
        Self::Iq1M,
    ];

    /// From the ggml type id stored in a GGUF tensor info; `None` for types we cannot read.
    pub fn from_u32(t: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|ty| ty.id() == t)
    }

    /// ggml's name for the type.
    pub fn name(self) -> &'static str {
        type_name(self.id())
    }

    /// The ggml type id.
    pub fn id(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q5_0 => 6,
            Self::Q5_1 => 7,
            Self::Q8_0 => 8,
            Self::Q2K => 10,
            Self::Q3K => 11,
            Self::Q4K => 12,
            Self::Q5K => 13,
            Self::Q6K => 14,
            Self::Q8K => 15,
            Self::Iq4Nl => 20,
            Self::Iq4Xs => 23,
            Self::Iq2Xxs => 16,
            Self::Iq2Xs => 17,
            Self::Iq2S => 22,
            Self::Iq3Xxs => 18,
            Self::Iq3S => 21,
            Self::Iq1S => 19,
            Self::Iq1M => 29,
            Self::Bf16 => 30,
        }
    }

    /// (elements per block, bytes per block).
    pub fn block(self) -> (usize, usize) {
        match self {
            Self::F32 => (1, 4),
            Self::F16 | Self::Bf16 => (1, 2),
            Self::Q4_0 | Self::Iq4Nl => (QK, 2 + QK / 2),
            Self::Q4_1 => (QK, 4 + QK / 2),
            Self::Q5_0 => (QK, 2 + 4 + QK / 2),
            Self::Q5_1 => (QK, 4 + 4 + QK / 2),
            Self::Q8_0 => (QK, 2 + QK),
            Self::Q2K => (QK_K, QK_K / 16 + QK_K / 4 + 2 + 2),
            Self::Q3K => (QK_K, QK_K / 8 + QK_K / 4 + 12 + 2),
            Self::Q4K => (QK_K, 2 + 2 + 12 + QK_K / 2),
            Self::Q5K => (QK_K, 2 + 2 + 12 + QK_K / 8 + QK_K / 2),
            Self::Q6K => (QK_K, QK_K / 2 + QK_K / 4 + QK_K / 16 + 2),
            Self::Q8K => (QK_K, 4 + QK_K + 2 * QK_K / 16),
            Self::Iq4Xs => (QK_K, 2 + 2 + QK_K / 64 + QK_K / 2),
            Self::Iq2Xxs => (QK_K, 2 + QK_K / 4),
            Self::Iq2Xs => (QK_K, 2 + QK_K / 4 + QK_K / 32),
            Self::Iq2S => (QK_K, 2 + QK_K / 4 + QK_K / 16),
            Self::Iq3Xxs => (QK_K, 2 + 3 * QK_K / 8),
            Self::Iq3S => (QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + QK_K / 64),
            Self::Iq1S => (QK_K, 2 + QK_K / 8 + QK_K / 16),
            Self::Iq1M => (QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32),
        }
    }

    /// The names of all supported types, comma-separated.
    pub fn supported_list() -> String {
        Self::ALL.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
    }
}

/// Name of any ggml type id (supported or not), for messages.
pub fn type_name(t: u32) -> &'static str {
    const NAMES: [&str; 31] = [
        "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
        "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16",
        "I32", "I64", "F64", "IQ1_M", "BF16",
    ];
    match t {
        34 => "TQ1_0",
        35 => "TQ2_0",
        39 => "MXFP4",
        _ => NAMES.get(t as usize).copied().unwrap_or("unknown"),
    }
}

#[inline]
fn half(b: &[u8]) -> f32 {
    f16::from_le_bytes([b[0], b[1]]).to_f32()
}

/// Little-endian u16 / u32 at byte `i`.
#[inline]
fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

#[inline]
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// Dequantizes whole blocks: `src` holds `out.len() / elements-per-block` blocks of `ty`.
/// The caller guarantees the lengths agree (the GGUF reader checks every tensor's span).
pub fn dequantize(ty: GgmlType, src: &[u8], out: &mut [f32]) {
    let (be, bb) = ty.block();
    debug_assert_eq!(src.len() / bb * be, out.len());
    let blocks = out.chunks_exact_mut(be).zip(src.chunks_exact(bb));
    match ty {
        GgmlType::F32 => blocks.for_each(|(o, b)| o[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        GgmlType::F16 => blocks.for_each(|(o, b)| o[0] = half(b)),
        GgmlType::Bf16 => blocks.for_each(|(o, b)| o[0] = bf16::from_le_bytes([b[0], b[1]]).to_f32()),
        GgmlType::Q4_0 => blocks.for_each(|(o, b)| {
            let d = half(b);
            nibbles(o, &b[2..], |q| (q as i32 - 8) as f32 * d);
        }),
        GgmlType::Q4_1 => blocks.for_each(|(o, b)| {
            let (d, m) = (half(b), half(&b[2..]));
            nibbles(o, &b[4..], |q| q as f32 * d + m);
        }),
        GgmlType::Q5_0 => blocks.for_each(|(o, b)| {
            let d = half(b);
            fives(o, &b[2..6], &b[6..], |q| (q as i32 - 16) as f32 * d);
        }),
        GgmlType::Q5_1 => blocks.for_each(|(o, b)| {
            let (d, m) = (half(b), half(&b[2..]));
            fives(o, &b[4..8], &b[8..], |q| q as f32 * d + m);
        }),
        GgmlType::Q8_0 => blocks.for_each(|(o, b)| {
            let d = half(b);
            o.iter_mut().zip(&b[2..]).for_each(|(w, &q)| *w = (q as i8) as f32 * d);
        }),
        GgmlType::Iq4Nl => blocks.for_each(|(o, b)| {
            let d = half(b);
            nibbles(o, &b[2..], |q| d * IQ4_NL_VALUES[q as usize] as f32);
        }),
        GgmlType::Iq4Xs => blocks.for_each(|(o, b)| iq4_xs(o, b)),
        GgmlType::Iq2Xxs => blocks.for_each(|(o, b)| iq2_xxs(o, b)),
        GgmlType::Iq2Xs => blocks.for_each(|(o, b)| iq2_xs(o, b)),
        GgmlType::Iq2S => blocks.for_each(|(o, b)| iq2_s(o, b)),
        GgmlType::Iq3Xxs => blocks.for_each(|(o, b)| iq3_xxs(o, b)),
        GgmlType::Iq3S => blocks.for_each(|(o, b)| iq3_s(o, b)),
        GgmlType::Iq1S => blocks.for_each(|(o, b)| iq1_s(o, b)),
        GgmlType::Iq1M => blocks.for_each(|(o, b)| iq1_m(o, b)),
        GgmlType::Q2K => blocks.for_each(|(o, b)| q2_k(o, b)),
        GgmlType::Q3K => blocks.for_each(|(o, b)| q3_k(o, b)),
        GgmlType::Q4K => blocks.for_each(|(o, b)| q4_k(o, b)),
        GgmlType::Q5K => blocks.for_each(|(o, b)| q5_k(o, b)),
        GgmlType::Q6K => blocks.for_each(|(o, b)| q6_k(o, b)),
        GgmlType::Q8K => blocks.for_each(|(o, b)| {
            let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            o.iter_mut().zip(&b[4..4 + QK_K]).for_each(|(w, &q)| *w = d * (q as i8) as f32);
        }),
    }
}

/// One 32-element block of nibbles: weights 0..15 are the low nibbles of `qs` (16 bytes), 16..31
/// the high nibbles.
#[inline]
fn nibbles(o: &mut [f32], qs: &[u8], f: impl Fn(u8) -> f32) {
    for (j, &q) in qs.iter().take(QK / 2).enumerate() {
        o[j] = f(q & 0x0F);
        o[j + QK / 2] = f(q >> 4);
    }
}

/// One 32-element block of 5-bit values: nibbles as in [`nibbles`], bit `j` of the little-endian
/// u32 `qh` is the 5th bit of weight `j`.
#[inline]
fn fives(o: &mut [f32], qh: &[u8], qs: &[u8], f: impl Fn(u8) -> f32) {
    let qh = u32_at(qh, 0);
    for (j, &q) in qs.iter().take(QK / 2).enumerate() {
        let hi0 = ((qh >> j) & 1) as u8;
        let hi1 = ((qh >> (j + QK / 2)) & 1) as u8;
        o[j] = f((q & 0x0F) | (hi0 << 4));
        o[j + QK / 2] = f((q >> 4) | (hi1 << 4));
    }
}

/// Q2_K: 16 sub-blocks of 16. Elements run in two halves of 128; within a half, 2-bit field `s`
/// (shift 2s) of byte `l` of the half's 32 quant bytes is element `32s + l`.
fn q2_k(o: &mut [f32], b: &[u8]) {
    let (scales, rest) = b.split_at(QK_K / 16); // (16): low nibble scale, high nibble min
    let (qs, rest) = rest.split_at(QK_K / 4); // (64)
    let (d, dmin) = (half(rest), half(&rest[2..]));
    for (e, w) in o.iter_mut().enumerate() {
        let (h, s, l) = (e / 128, (e % 128) / 32, e % 32);
        let sc = scales[e / 16];
        let dl = d * (sc & 0x0F) as f32;
        let ml = dmin * (sc >> 4) as f32;
        let q = (qs[h * 32 + l] >> (2 * s)) & 3;
        *w = dl * q as f32 - ml;
    }
}

/// Q3_K: 16 sub-blocks of 16 with signed 6-bit scales (offset 32). 2-bit fields as in Q2_K; the
/// high-bit mask byte `l`, bit `e / 32`, when clear subtracts 4 from the quant.
fn q3_k(o: &mut [f32], b: &[u8]) {
    let (hmask, rest) = b.split_at(QK_K / 8); // (32)
    let (qs, rest) = rest.split_at(QK_K / 4); // (64)
    let (sp, d) = rest.split_at(12); // packed scales, then f16 d
    let d = half(d);
    // Scale i: low 4 bits from byte i (i < 8) or the high nibble of byte i - 8; high 2 bits from
    // byte 8 + i % 4, bits 2·(i / 4).
    let mut scales = [0i8; 16];
    for (i, s) in scales.iter_mut().enumerate() {
        let lo = if i < 8 { sp[i] & 0x0F } else { sp[i - 8] >> 4 };
        let hi = (sp[8 + i % 4] >> (2 * (i / 4))) & 3;
        *s = ((lo | (hi << 4)) as i8).wrapping_sub(32);
    }
    for (e, w) in o.iter_mut().enumerate() {
        let (h, s, l) = (e / 128, (e % 128) / 32, e % 32);
        let dl = d * scales[e / 16] as f32;
        let low = ((qs[h * 32 + l] >> (2 * s)) & 3) as i8;
        let q = low - if hmask[l] & (1 << (e / 32)) != 0 { 0 } else { 4 };
        *w = dl * q as f32;
    }
}

/// Scale and min `j` (0..8) of the 12 packed bytes of Q4_K / Q5_K (ggml's `get_scale_min_k4`).
#[inline]
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// Q4_K: 8 sub-blocks of 32 with 6-bit scales and mins. Sub-blocks 2k and 2k+1 are the low and
/// high nibbles of quant bytes 32k..32k+32.
fn q4_k(o: &mut [f32], b: &[u8]) {
    let (d, dmin) = (half(b), half(&b[2..]));
    let (scales, qs) = (&b[4..16], &b[16..16 + QK_K / 2]);
    for (j, sub) in o.chunks_exact_mut(32).enumerate() {
        let (sc, m) = scale_min_k4(j, scales);
        let (d1, m1) = (d * sc as f32, dmin * m as f32);
        let bytes = &qs[32 * (j / 2)..32 * (j / 2) + 32];
        for (w, &q) in sub.iter_mut().zip(bytes) {
            let q = if j % 2 == 0 { q & 0x0F } else { q >> 4 };
            *w = d1 * q as f32 - m1;
        }
    }
}

/// Q5_K: Q4_K plus a 5th bit per weight: bit `j` of high-bit byte `l` for element `32j + l`.
fn q5_k(o: &mut [f32], b: &[u8]) {
    let (d, dmin) = (half(b), half(&b[2..]));
    let scales = &b[4..16];
    let qh = &b[16..16 + QK_K / 8];
    let qs = &b[16 + QK_K / 8..16 + QK_K / 8 + QK_K / 2];
    for (j, sub) in o.chunks_exact_mut(32).enumerate() {
        let (sc, m) = scale_min_k4(j, scales);
        let (d1, m1) = (d * sc as f32, dmin * m as f32);
        let bytes = &qs[32 * (j / 2)..32 * (j / 2) + 32];
        for (l, (w, &q)) in sub.iter_mut().zip(bytes).enumerate() {
            let low = if j % 2 == 0 { q & 0x0F } else { q >> 4 };
            let high = (qh[l] >> j) & 1;
            *w = d1 * (low | (high << 4)) as f32 - m1;
        }
    }
}

/// Q6_K: 16 sub-blocks of 16 with i8 scales; 6-bit quants offset by 32. Per half of 128:
/// element `64t + 32u + l` (t, u ∈ {0, 1}) takes nibble `t` of low byte `32u + l` and 2-bit
/// field `2t + u` of high byte `l`.
fn q6_k(o: &mut [f32], b: &[u8]) {
    let ql = &b[..QK_K / 2]; // (128)
    let qh = &b[QK_K / 2..QK_K / 2 + QK_K / 4]; // (64)
    let sc = &b[QK_K / 2 + QK_K / 4..QK_K / 2 + QK_K / 4 + QK_K / 16]; // (16) i8
    let d = half(&b[QK_K / 2 + QK_K / 4 + QK_K / 16..]);
    for (e, w) in o.iter_mut().enumerate() {
        let (h, r) = (e / 128, e % 128);
        let (t, u, l) = (r / 64, (r % 64) / 32, r % 32);
        let lo = ql[h * 64 + 32 * u + l] >> (4 * t) & 0x0F;
        let hi = (qh[h * 32 + l] >> (2 * (2 * t + u))) & 3;
        let q = (lo | (hi << 4)) as i8 - 32;
        *w = d * (sc[e / 16] as i8) as f32 * q as f32;
    }
}

/// IQ4_XS: eight sub-blocks of 32, each with a 6-bit scale (low nibble from `scales_l`, high 2 bits from
/// `scales_h`) offset by 32, over the IQ4_NL code book.
fn iq4_xs(o: &mut [f32], b: &[u8]) {
    let d = half(b);
    let sh = u16_at(b, 2);
    let (sl, qs) = (&b[4..8], &b[8..]);
    for (i, (os, q)) in o.chunks_exact_mut(QK).zip(qs.chunks_exact(QK / 2)).enumerate() {
        let l = ((sl[i / 2] >> (4 * (i % 2))) & 15) as i32 | ((((sh >> (2 * i)) & 3) as i32) << 4);
        let dl = d * (l - 32) as f32;
        nibbles(os, q, |v| dl * IQ4_NL_VALUES[v as usize] as f32);
    }
}

/// The 8 signs of a 7-bit stored pattern: bit 7 makes the count of minus signs even (ggml's `ksigns_iq2xs`).
#[inline]
fn ksigns(i: u32) -> u8 {
    let i = (i & 127) as u8;
    i | (((i.count_ones() & 1) as u8) << 7)
}

/// `n` weights (n ≤ 8) of one code-book row `row` (value j in byte j) with sign bits `signs`: `db·v·(±1)`.
#[inline]
fn signed_row(o: &mut [f32], db: f32, row: u64, signs: u8) {
    for (j, w) in o.iter_mut().enumerate() {
        let v = ((row >> (8 * j)) & 0xff) as f32;
        *w = db * v * if signs >> j & 1 == 1 { -1.0 } else { 1.0 };
    }
}

/// IQ2_XS / IQ2_S: the scale of 8-weight group `g` — nibble `(g / 2) % 2` of byte `g / 4` of `sc`, one a 16
/// weights — as `d·(0.5 + s)·0.25`.
#[inline]
fn iq2_db(d: f32, sc: &[u8], g: usize) -> f32 {
    let s = (sc[g / 4] >> (4 * ((g / 2) % 2))) & 15;
    d * (0.5 + s as f32) * 0.25
}

/// IQ2_XXS: per 32 weights two u32 — four 8-bit rows of the 256-row grid, then four 7-bit sign patterns and a
/// 4-bit scale (`db = d·(0.5 + s)·0.25`).
fn iq2_xxs(o: &mut [f32], b: &[u8]) {
    let d = half(b);
    for (ib, os) in o.chunks_exact_mut(32).enumerate() {
        let (a0, a1) = (u32_at(b, 2 + 8 * ib), u32_at(b, 6 + 8 * ib));
        let db = d * (0.5 + (a1 >> 28) as f32) * 0.25;
        for (l, og) in os.chunks_exact_mut(8).enumerate() {
            let row = iq_grids::IQ2XXS_GRID[((a0 >> (8 * l)) & 255) as usize];
            signed_row(og, db, row, ksigns(a1 >> (7 * l)));
        }
    }
}

/// IQ2_XS: 32 u16 (a 9-bit row of the 512-row grid, a 7-bit sign pattern), then 8 bytes of two 4-bit scales
/// (`db = d·(0.5 + s)·0.25`, one a 16 weights).
fn iq2_xs(o: &mut [f32], b: &[u8]) {
    let d = half(b);
    let sc = &b[2 + QK_K / 4..];
    for (g, og) in o.chunks_exact_mut(8).enumerate() {
        let q = u16_at(b, 2 + 2 * g) as u32;
        signed_row(og, iq2_db(d, sc, g), iq_grids::IQ2XS_GRID[(q & 511) as usize], ksigns(q >> 9));
    }
}

/// IQ2_S: 32 low index bytes, 32 sign bytes, 8 bytes of 2-bit index highs (a 10-bit row of the 1024-row grid),
/// 8 bytes of two 4-bit scales (`db = d·(0.5 + s)·0.25`, one a 16 weights).
fn iq2_s(o: &mut [f32], b: &[u8]) {
    let d = half(b);
    let (qs, signs, qh, sc) = (&b[2..34], &b[34..66], &b[66..74], &b[74..82]);
    for (g, og) in o.chunks_exact_mut(8).enumerate() {
        let idx = qs[g] as usize | ((((qh[g / 4] >> (2 * (g % 4))) & 3) as usize) << 8);
        signed_row(og, iq2_db(d, sc, g), iq_grids::IQ2S_GRID[idx], signs[g]);
    }
}

/// IQ3_XXS: 64 index bytes (rows of 4 of the 256-row grid), then per 32 weights a u32 of four 7-bit sign patterns
/// and a 4-bit scale (`db = d·(0.5 + s)·0.5`).
fn iq3_xxs(o: &mut [f32], b: &[u8]) {
    let d = half(b);
    let (qs, words) = (&b[2..66], &b[66..98]);
    for (ib, os) in o.chunks_exact_mut(32).enumerate() {
        let a = u32_at(words, 4 * ib);
        let db = d * (0.5 + (a >> 28) as f32) * 0.5;
        for (l, og) in os.chunks_exact_mut(8).enumerate() {
            let lo = iq_grids::IQ3XXS_GRID[qs[8 * ib + 2 * l] as usize] as u64;
            let hi = iq_grids::IQ3XXS_GRID[qs[8 * ib + 2 * l + 1] as usize] as u64;
            signed_row(og, db, lo | (hi << 32), ksigns(a >> (7 * l)));
        }
    }
}

/// IQ3_S: 64 low index bytes, 8 bytes of index high bits (a 9-bit row of 4 of the 512-row grid), 32 sign bytes,
/// 4 bytes of two 4-bit scales (`db = d·(1 + 2s)`, one a 32 weights).
fn iq3_s(o: &mut [f32], b: &[u8]) {
    let d = half(b);
    let (qs, qh, signs, sc) = (&b[2..66], &b[66..74], &b[74..106], &b[106..110]);
    let idx = |i: usize| qs[i] as usize | ((((qh[i / 8] >> (i % 8)) & 1) as usize) << 8);
    for (g, og) in o.chunks_exact_mut(8).enumerate() {
        let s = (sc[g / 8] >> (4 * ((g / 4) % 2))) & 15;
        let db = d * (1 + 2 * s as u32) as f32;
        let (lo, hi) = (iq_grids::IQ3S_GRID[idx(2 * g)] as u64, iq_grids::IQ3S_GRID[idx(2 * g + 1)] as u64);
        signed_row(og, db, lo | (hi << 32), signs[g]);
    }
}

/// IQ1's shift: ±1/8 of the scale.
const IQ1_DELTA: f32 = 0.125;

/// 8 weights of IQ1 grid row `idx` (−1 / 0 / 1 as two's-complement bytes): `dl·(v + delta)`.
#[inline]
fn iq1_row(o: &mut [f32], dl: f32, idx: usize, delta: f32) {
    let row = iq_grids::IQ1S_GRID[idx];
    for (j, w) in o.iter_mut().enumerate() {
        *w = dl * (((row >> (8 * j)) & 0xff) as u8 as i8 as f32 + delta);
    }
}

/// IQ1_S: f16 d, 32 low index bytes, 8 u16 (four 3-bit index highs, a 3-bit scale, the shift's sign) a 32 weights.
fn iq1_s(o: &mut [f32], b: &[u8]) {
    let d = half(b);
    let (qs, qh) = (&b[2..34], &b[34..50]);
    for (ib, os) in o.chunks_exact_mut(32).enumerate() {
        let h = u16_at(qh, 2 * ib) as u32;
        let dl = d * (2 * ((h >> 12) & 7) + 1) as f32;
        let delta = if h & 0x8000 == 0 { IQ1_DELTA } else { -IQ1_DELTA };
        for (l, og) in os.chunks_exact_mut(8).enumerate() {
            iq1_row(og, dl, qs[4 * ib + l] as usize | ((((h >> (3 * l)) & 7) as usize) << 8), delta);
        }
    }
}

/// IQ1_M: 32 low index bytes, 16 bytes of nibbles (3-bit index high, the shift's sign) a 8 weights, four u16 of
/// 3-bit scales (one a 16 weights) whose top nibbles together are the f16 d.
fn iq1_m(o: &mut [f32], b: &[u8]) {
    let (qs, qh) = (&b[0..32], &b[32..48]);
    let sc: [u16; 4] = std::array::from_fn(|i| u16_at(b, 48 + 2 * i));
    let dbits = (sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000);
    let d = f16::from_bits(dbits).to_f32();
    for (g, og) in o.chunks_exact_mut(8).enumerate() {
        let s = (sc[g / 8] >> (3 * ((g / 2) % 4))) & 7;
        let dl = d * (2 * s as u32 + 1) as f32;
        let nib = (qh[g / 2] >> (4 * (g % 2))) & 15;
        let delta = if nib & 8 == 0 { IQ1_DELTA } else { -IQ1_DELTA };
        iq1_row(og, dl, qs[g] as usize | (((nib & 7) as usize) << 8), delta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_sizes_match_ggml() {
        // ggml's type_size for each type (GGML_QUANT_SIZES in the gguf package).
        let want = [
            (GgmlType::Q2K, 84),
            (GgmlType::Q3K, 110),
            (GgmlType::Q4K, 144),
            (GgmlType::Q5K, 176),
            (GgmlType::Q6K, 210),
            (GgmlType::Q8K, 292),
            (GgmlType::Q5_0, 22),
            (GgmlType::Q5_1, 24),
            (GgmlType::Iq4Nl, 18),
            (GgmlType::Iq4Xs, 136),
            (GgmlType::Iq2Xxs, 66),
            (GgmlType::Iq2Xs, 74),
            (GgmlType::Iq2S, 82),
            (GgmlType::Iq3Xxs, 98),
            (GgmlType::Iq3S, 110),
            (GgmlType::Iq1S, 50),
            (GgmlType::Iq1M, 56),
        ];
        for (t, bytes) in want {
            assert_eq!(t.block().1, bytes, "{}", t.name());
            assert_eq!(GgmlType::from_u32(t.id()), Some(t));
        }
    }

    #[test]
    fn q4_0_block_by_hand() {
        // d = 0.5; byte 0 = 0x21 → weight 0 = 0.5*(1-8), weight 16 = 0.5*(2-8).
        let mut b = vec![0u8; 18];
        b[..2].copy_from_slice(&f16::from_f32(0.5).to_le_bytes());
        b[2] = 0x21;
        let mut out = [0.0f32; 32];
        dequantize(GgmlType::Q4_0, &b, &mut out);
        assert_eq!((out[0], out[16], out[1]), (-3.5, -3.0, -4.0));
    }

    #[test]
    fn q5_0_high_bits_by_hand() {
        // d = 1; qh bit 0 and bit 16 set; byte 0 = 0x21 → w0 = (1|16)-16 = 1, w16 = (2|16)-16 = 2.
        let mut b = vec![0u8; 22];
        b[..2].copy_from_slice(&f16::from_f32(1.0).to_le_bytes());
        b[2..6].copy_from_slice(&(1u32 | 1 << 16).to_le_bytes());
        b[6] = 0x21;
        let mut out = [0.0f32; 32];
        dequantize(GgmlType::Q5_0, &b, &mut out);
        assert_eq!((out[0], out[16], out[1], out[17]), (1.0, 2.0, -16.0, -16.0));
    }

    #[test]
    fn q6_k_layout_by_hand() {
        // d = 1, all scales 1; ql byte 32 = 0x5A, qh byte 0 = 0b11_10_01_00 → element 32 (t=0,u=1):
        // nibble 0xA | field 1 (=1) << 4 → 26 - 32 = -6; element 96 (t=1,u=1): 0x5 | field 3 (=3)<<4 → 53-32.
        let mut b = vec![0u8; 210];
        b[32] = 0x5A;
        b[128] = 0b11_10_01_00;
        for s in &mut b[192..208] {
            *s = 1;
        }
        b[208..210].copy_from_slice(&f16::from_f32(1.0).to_le_bytes());
        let mut out = [0.0f32; 256];
        dequantize(GgmlType::Q6K, &b, &mut out);
        assert_eq!((out[32], out[96], out[0], out[64]), (-6.0, 21.0, -32.0, 2.0 * 16.0 - 32.0));
    }
}
