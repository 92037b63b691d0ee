//! Host-side weight preparation: the one conversion from stored weights (float tensors, or the
//! quantized codes + scales of `crate::quant`, exactly as an engine directory holds them) into the
//! kernels' layouts. No quantizer lives here: quantized weights always come from `crate::quant`
//! (an engine dir's stored initializers, or `quant::rtn` for a preset, as `convert` does). Plain Rust,
//! tested on CPU.
//!
//! Stored layouts (docs/formats.md): `(stored_in, out)` row-major codes, symmetric, int8 with one f16
//! scale per output channel, int4 with one f16 scale per `group` inputs (`(stored_in / group, out)`),
//! `stored_in` = inputs padded with zero codes to whole groups.
//!
//! Kernel layouts (what the device holds), rows = output features, each row's inputs contiguous:
//! - int8: bytes `q + 128` (so `0x4B000000 | b` is the float 2²³ + b exactly; see kernels.cu),
//!   scales (N) f16.
//! - fp8: the E4M3 codes as stored (bit patterns, one byte each), scales (N) f16.
//! - int4: unsigned nibbles `u = q + 8` (zero point 8, a constant in the kernels), each little-endian
//!   32-bit word holds 8 consecutive elements, element 2i at nibble i and 2i+1 at nibble i+4, so
//!   `(w >> 4i) & 0x000F000F` yields the pair (2i, 2i+1) as two f16 lanes. Only the `in` real
//!   inputs are kept (the padding codes are 0 and multiply nothing); scales (N, ceil(in / group)) f16,
//!   the last group of a padded row being partial.
use super::kernels::WeightFormat;
use crate::quant::QuantizedLinear;
use half::f16;

/// A linear weight in the kernels' layout, still on the host. Rows are output features.
#[derive(Debug, Clone, PartialEq)]
pub struct HostLinear {
    pub fmt: WeightFormat,
    pub n: usize,
    pub k: usize,
    /// (N, row bytes) in the kernel layout.
    pub data: Vec<u8>,
    /// int8: (N); int4: (N, ceil(K/group)). Empty otherwise.
    pub scales: Vec<f16>,
}

impl HostLinear {
    pub fn row_bytes(&self) -> usize {
        match self.fmt {
            WeightFormat::F32 => self.k * 4,
            WeightFormat::F16 => self.k * 2,
            WeightFormat::I8 | WeightFormat::F8 => self.k,
            WeightFormat::I4 { .. } => self.k / 2,
        }
    }
    fn per_row_meta(&self) -> usize {
        match self.fmt {
            WeightFormat::I8 | WeightFormat::F8 => 1,
            WeightFormat::I4 { group } => self.k.div_ceil(group),
            _ => 0,
        }
    }

    /// A float (N, K) weight as f32 or f16 (`half`). Quantized formats come from
    /// [`from_quantized`](Self::from_quantized) only.
    pub fn from_float(w: &[f32], n: usize, k: usize, half: bool) -> Self {
        assert_eq!(w.len(), n * k, "weight of {} elements is not {n}×{k}", w.len());
        if half {
            let data = w.iter().flat_map(|x| f16::from_f32(*x).to_le_bytes()).collect();
            HostLinear { fmt: WeightFormat::F16, n, k, data, scales: vec![] }
        } else {
            let data = w.iter().flat_map(|x| x.to_le_bytes()).collect();
            HostLinear { fmt: WeightFormat::F32, n, k, data, scales: vec![] }
        }
    }

    /// The stored codes and scales of a quantized linear, repacked (not re-rounded) into the kernel
    /// layout. Errors when the kernels cannot read the shape (int4 inputs not a multiple of 8).
    pub fn from_quantized(ql: &QuantizedLinear) -> Result<Self, String> {
        let (n, k, ks) = (ql.out_features, ql.in_features, ql.stored_in());
        if ql.q.len() != ks * n {
            return Err(format!("{} codes for a ({ks}, {n}) weight", ql.q.len()));
        }
        match ql.format {
            WeightFormat::I8 => {
                if ql.scales.len() != n {
                    return Err(format!("{} int8 scales for {n} outputs", ql.scales.len()));
                }
                let mut data = vec![0u8; n * k];
                for kk in 0..k {
                    let src = &ql.q[kk * n..(kk + 1) * n];
                    for (r, &v) in src.iter().enumerate() {
                        data[r * k + kk] = (v as u8) ^ 0x80;
                    }
                }
                Ok(HostLinear { fmt: WeightFormat::I8, n, k, data, scales: ql.scales.clone() })
            }
            WeightFormat::F8 => {
                // E4M3 bit patterns as stored, rows = outputs; one f16 scale per row.
                if ql.scales.len() != n {
                    return Err(format!("{} fp8 scales for {n} outputs", ql.scales.len()));
                }
                let mut data = vec![0u8; n * k];
                for kk in 0..k {
                    for (r, &v) in ql.q[kk * n..(kk + 1) * n].iter().enumerate() {
                        data[r * k + kk] = v as u8;
                    }
                }
                Ok(HostLinear { fmt: WeightFormat::F8, n, k, data, scales: ql.scales.clone() })
            }
            WeightFormat::I4 { group } => {
                if k % 8 != 0 {
                    return Err(format!("int4 input dim {k} is not a multiple of 8"));
                }
                let ng = ks / group;
                if ql.scales.len() != ng * n || k.div_ceil(group) != ng {
                    return Err(format!("{} int4 scales for ({ng}, {n}) groups", ql.scales.len()));
                }
                let rb = k / 2;
                let mut data = vec![0u8; n * rb];
                for kk in 0..k {
                    let src = &ql.q[kk * n..(kk + 1) * n];
                    let (word, e) = (kk / 8, kk % 8);
                    let shift = if e % 2 == 0 { 4 * (e / 2) } else { 4 * (e / 2) + 16 };
                    let (byte, bit) = (word * 4 + shift / 8, shift % 8);
                    for (r, &v) in src.iter().enumerate() {
                        if !(-8..=7).contains(&v) {
                            return Err(format!("int4 code {v} out of range"));
                        }
                        data[r * rb + byte] |= (((v + 8) as u8) & 15) << bit;
                    }
                }
                let mut scales = vec![f16::ZERO; n * ng];
                for g in 0..ng {
                    for r in 0..n {
                        scales[r * ng + g] = ql.scales[g * n + r];
                    }
                }
                Ok(HostLinear { fmt: WeightFormat::I4 { group }, n, k, data, scales })
            }
            f => Err(format!("{} is not a quantized format", f.name())),
        }
    }

    /// Element (r, c) as the kernels see it, in f32 (for tests and reference weights).
    pub fn get(&self, r: usize, c: usize) -> f32 {
        let row = &self.data[r * self.row_bytes()..(r + 1) * self.row_bytes()];
        match self.fmt {
            WeightFormat::F32 => f32::from_le_bytes(row[c * 4..c * 4 + 4].try_into().unwrap_or([0; 4])),
            WeightFormat::F16 => f16::from_le_bytes([row[c * 2], row[c * 2 + 1]]).to_f32(),
            WeightFormat::I8 => ((row[c] ^ 0x80) as i8) as f32 * self.scales[r].to_f32(),
            // The E4M3 code times its row scale.
            WeightFormat::F8 => crate::quant::fp8::decode(row[c]) * self.scales[r].to_f32(),
            WeightFormat::I4 { group } => {
                let word = u32::from_le_bytes(row[(c / 8) * 4..(c / 8) * 4 + 4].try_into().unwrap_or([0; 4]));
                let e = c % 8;
                let shift = if e % 2 == 0 { 4 * (e / 2) } else { 4 * (e / 2) + 16 };
                let q = ((word >> shift) & 15) as f32 - 8.0;
                q * self.scales[r * self.per_row_meta() + c / group].to_f32()
            }
        }
    }

    /// The weight as the kernels compute with it, (N, K) f32.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.n * self.k);
        for r in 0..self.n {
            for c in 0..self.k {
                out.push(self.get(r, c));
            }
        }
        out
    }

    /// Stacks weights of one format and input dim along the output dim.
    pub fn concat_rows(parts: &[HostLinear]) -> Self {
        let first = &parts[0];
        for p in parts {
            assert!(p.fmt == first.fmt && p.k == first.k, "concatenated weights must share format and K");
        }
        HostLinear {
            fmt: first.fmt,
            n: parts.iter().map(|p| p.n).sum(),
            k: first.k,
            data: parts.iter().flat_map(|p| p.data.iter().copied()).collect(),
            scales: parts.iter().flat_map(|p| p.scales.iter().copied()).collect(),
        }
    }

    /// Reorders rows: physical row i of the result is row `order[i]` of `self`.
    pub fn permute_rows(&self, order: &[usize]) -> Self {
        assert_eq!(order.len(), self.n);
        let rb = self.row_bytes();
        let m = self.per_row_meta();
        let mut out = HostLinear { data: Vec::with_capacity(self.data.len()), scales: vec![], ..*self };
        for &r in order {
            out.data.extend_from_slice(&self.data[r * rb..(r + 1) * rb]);
            if m > 0 {
                out.scales.extend_from_slice(&self.scales[r * m..(r + 1) * m]);
            }
        }
        out
    }

    /// Device bytes of data and scales.
    pub fn bytes(&self) -> usize {
        self.data.len() + 2 * self.scales.len()
    }
}

/// Row order of the fused QKV weight: physical row i is logical row `order[i]` of [Wq; Wk; Wv].
/// q and k rows come in RoPE pairs (d, d + head_dim/2) of each head; v rows stay in order.
pub fn qkv_row_order(n_heads: usize, n_kv: usize, head_dim: usize) -> Vec<usize> {
    let half = head_dim / 2;
    let mut order = Vec::with_capacity((n_heads + 2 * n_kv) * head_dim);
    for (base, heads) in [(0, n_heads), (n_heads * head_dim, n_kv)] {
        for h in 0..heads {
            for i in 0..half {
                order.push(base + h * head_dim + i);
                order.push(base + h * head_dim + i + half);
            }
        }
    }
    let v0 = (n_heads + n_kv) * head_dim;
    order.extend(v0..v0 + n_kv * head_dim);
    order
}

/// Row order of the fused gate/up weight: physical rows (2j, 2j+1) = (gate j, up j).
pub fn gateup_row_order(inter: usize) -> Vec<usize> {
    (0..inter).flat_map(|j| [j, inter + j]).collect()
}

/// An f16 (n, k) row-major matrix's bytes in column tiles: (k / 8, n, 8) — tile j holds columns
/// 8j .. 8j + 7 of every row, 16 bytes a row (the `tcd_*` kernels' down weights, session 29).
/// k must be a multiple of 8 and `data` n × k f16.
pub fn cols8_tiles(data: &[u8], n: usize, k: usize) -> Vec<u8> {
    assert!(k % 8 == 0 && data.len() == n * k * 2, "cols8_tiles: {n} x {k} f16 in {} bytes", data.len());
    let mut out = vec![0u8; data.len()];
    for (j, tile) in out.chunks_exact_mut(n * 16).enumerate() {
        for (r, dst) in tile.chunks_exact_mut(16).enumerate() {
            let at = r * k * 2 + j * 16;
            dst.copy_from_slice(&data[at..at + 16]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cols8_tiles_moves_every_element_once() {
        // (3, 16) f16 as u16 = r * 100 + c: tile j, row r, lane e holds element (r, 8j + e).
        let (n, k) = (3, 16);
        let m: Vec<u8> = (0..n * k).flat_map(|i| ((i / k * 100 + i % k) as u16).to_le_bytes()).collect();
        let t = cols8_tiles(&m, n, k);
        for j in 0..k / 8 {
            for r in 0..n {
                for e in 0..8 {
                    let at = ((j * n + r) * 8 + e) * 2;
                    assert_eq!(u16::from_le_bytes([t[at], t[at + 1]]) as usize, r * 100 + 8 * j + e);
                }
            }
        }
    }
    use crate::model::Tensor;
    use crate::quant::rtn::quantize_tensor;
    use crate::util::SplitMix64;

    fn rand(n: usize, seed: u64) -> Vec<f32> {
        let mut r = SplitMix64(seed);
        (0..n).map(|_| r.next_f32() * 2.0 - 1.0).collect()
    }

    /// Every element of the kernel layout is exactly code × scale of the stored weight, and the
    /// stored dequantization (`f16(q · s)`, what ORT/TensorRT compute with) is its f16 rounding.
    fn assert_exact(ql: &QuantizedLinear, h: &HostLinear) {
        let stored = ql.dequantize(); // (out, in)
        let (n, k) = (ql.out_features, ql.in_features);
        assert_eq!((h.n, h.k), (n, k));
        for r in 0..n {
            for c in 0..k {
                let want = ql.q[c * n + r] as f32 * ql.scale(r, c).to_f32();
                assert_eq!(h.get(r, c), want, "({r},{c})");
                assert_eq!(f16::from_f32(h.get(r, c)).to_f32(), stored.data[r * k + c], "({r},{c})");
            }
        }
    }

    #[test]
    fn int8_repack_is_the_stored_codes() {
        let (n, k) = (16, 64);
        let ql = quantize_tensor(&Tensor::new(vec![n, k], rand(n * k, 1)), WeightFormat::I8, None);
        let h = HostLinear::from_quantized(&ql).unwrap();
        assert_exact(&ql, &h);
        // kernel bytes are q + 128, row-major (out, in)
        assert_eq!(h.data[3 * k + 5], (ql.q[5 * n + 3] as u8) ^ 0x80);
    }

    #[test]
    fn fp8_repack_is_the_stored_codes() {
        let (n, k) = (16, 64);
        let ql = crate::quant::fp8::quantize_weight(&Tensor::new(vec![n, k], rand(n * k, 7)));
        let h = HostLinear::from_quantized(&ql).unwrap();
        // kernel bytes are the stored E4M3 codes, row-major (out, in); values decode(q) · s
        assert_eq!(h.data[3 * k + 5], ql.q[5 * n + 3] as u8);
        let stored = ql.dequantize();
        for r in 0..n {
            for c in 0..k {
                let want = crate::quant::fp8::decode(ql.q[c * n + r] as u8) * ql.scales[r].to_f32();
                assert_eq!(h.get(r, c), want, "({r},{c})");
                assert_eq!(f16::from_f32(h.get(r, c)).to_f32(), stored.data[r * k + c]);
            }
        }
        // rows keep their scales through the QKV permutation
        let p = h.permute_rows(&(0..n).rev().collect::<Vec<_>>());
        assert_eq!(p.get(0, 7), h.get(n - 1, 7));
        assert_eq!(p.scales[0], h.scales[n - 1]);
    }

    #[test]
    fn int4_repack_is_the_stored_codes() {
        let (n, k, g) = (4, 128, 64);
        let ql = quantize_tensor(&Tensor::new(vec![n, k], rand(n * k, 2)), WeightFormat::I4 { group: g }, None);
        let h = HostLinear::from_quantized(&ql).unwrap();
        assert_exact(&ql, &h);
        // the kernel's extraction: (word >> 4i) & 0x000F000F holds elements (2i, 2i+1) as q + 8
        let word = u32::from_le_bytes(h.data[0..4].try_into().unwrap());
        for i in 0..4 {
            let pair = (word >> (4 * i)) & 0x000F_000F;
            assert_eq!((pair & 15) as i32 - 8, ql.q[(2 * i) * n] as i32);
            assert_eq!((pair >> 16) as i32 - 8, ql.q[(2 * i + 1) * n] as i32);
        }
    }

    #[test]
    fn int4_pairs_by_and_or_and_fma_are_the_codes() {
        // kernels.cu `i4_word_pairs` (session 22): pairs 0 / 2 as f16 (w & 0x000F000F) | 0x64006400 = 1024 + u minus
        // 1032; pairs 1 / 3 in place, (w & 0x00F000F0) | 0x64006400 = 1024 + 16u, times 1/16 minus 72 in one fma (one
        // rounding to f16); w >> 8 for pairs 2 / 3. Every f16 lane must be the stored code q = u - 8, exactly.
        use half::f16;
        let lanes = |v: u32| [f16::from_bits(v as u16), f16::from_bits((v >> 16) as u16)];
        let pairs = |w: u32| -> [[f16; 2]; 4] {
            let w8 = w >> 8;
            let (lo, hi) = (0x000F_000Fu32, 0x00F0_00F0u32);
            let sub = |v: u32| lanes(v | 0x6400_6400).map(|h| f16::from_f32(h.to_f32() - 1032.0));
            // f32 holds h / 16 - 72 exactly here (h < 2^11), so one rounding to f16 is the fma's.
            let fma = |v: u32| lanes(v | 0x6400_6400).map(|h| f16::from_f32(h.to_f32() * 0.0625 - 72.0));
            [sub(w & lo), fma(w & hi), sub(w8 & lo), fma(w8 & hi)]
        };
        let (n, k, g) = (8, 256, 128);
        let ql = quantize_tensor(&Tensor::new(vec![n, k], rand(n * k, 5)), WeightFormat::I4 { group: g }, None);
        let h = HostLinear::from_quantized(&ql).unwrap();
        // every nibble value in both lanes of every pair position, and the repacked words of a real tensor
        let mut words: Vec<u32> = (0..16u32).map(|u| u * 0x1111_1111).collect();
        words.extend((0..16u32).map(|u| (u * 0x0123_4567) ^ 0x89AB_CDEF));
        words.extend(h.data.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())));
        for w in words {
            for (i, p) in pairs(w).iter().enumerate() {
                let old = (w >> (4 * i)) & 0x000F_000F;
                assert_eq!(p[0].to_f32(), (old & 15) as f32 - 8.0, "word {w:08x} pair {i}");
                assert_eq!(p[1].to_f32(), (old >> 16) as f32 - 8.0, "word {w:08x} pair {i}");
            }
        }
        // the kernel's f16x2 constants are these values
        let src = crate::backend::cuda::kernels::KERNELS_CU;
        for (v, bits) in [(1032.0f32, "0x64086408u"), (0.0625, "0x2C002C00u"), (-72.0, "0xD480D480u")] {
            let b = f16::from_f32(v).to_bits();
            assert_eq!(format!("0x{b:04X}{b:04X}u"), bits);
            assert!(src.contains(&format!("\"r\"({bits})")), "{bits} not in i4_word_pairs");
        }
        // and the first word is the stored codes (elements 2i, 2i + 1 of row 0)
        let w0 = u32::from_le_bytes(h.data[0..4].try_into().unwrap());
        for (i, p) in pairs(w0).iter().enumerate() {
            assert_eq!(p[0].to_f32(), ql.q[(2 * i) * n] as f32);
            assert_eq!(p[1].to_f32(), ql.q[(2 * i + 1) * n] as f32);
        }
    }

    #[test]
    fn int4_padded_groups_keep_their_partial_last_group() {
        // SmolLM2-like: 576 inputs with group 128 are stored as 640 (5 groups, the last one partial).
        let (n, k, g) = (6, 576, 128);
        let ql = quantize_tensor(&Tensor::new(vec![n, k], rand(n * k, 3)), WeightFormat::I4 { group: g }, None);
        assert_eq!(ql.stored_in(), 640);
        let h = HostLinear::from_quantized(&ql).unwrap();
        assert_eq!(h.scales.len(), n * 5);
        assert_eq!(h.data.len(), n * k / 2);
        assert_exact(&ql, &h);
    }

    #[test]
    fn row_orders_are_permutations_with_rope_pairs() {
        let o = qkv_row_order(4, 2, 8);
        let mut s = o.clone();
        s.sort();
        assert_eq!(s, (0..64).collect::<Vec<_>>());
        assert_eq!(&o[..4], &[0, 4, 1, 5]);
        assert_eq!(&o[32..36], &[32, 36, 33, 37]); // first k head
        assert_eq!(&o[48..], &(48..64).collect::<Vec<_>>()[..]); // v
        assert_eq!(gateup_row_order(3), vec![0, 3, 1, 4, 2, 5]);
    }

    #[test]
    fn permute_and_concat_keep_rows_with_their_scales() {
        let (n, k) = (4, 64);
        let q = |seed| {
            let ql = quantize_tensor(&Tensor::new(vec![n, k], rand(n * k, seed)), WeightFormat::I4 { group: 32 }, None);
            HostLinear::from_quantized(&ql).unwrap()
        };
        let (a, b) = (q(4), q(5));
        let cat = HostLinear::concat_rows(&[a.clone(), b.clone()]);
        let p = cat.permute_rows(&[5, 0, 7, 1, 2, 3, 4, 6]);
        for c in 0..k {
            assert_eq!(p.get(0, c), b.get(1, c));
            assert_eq!(p.get(1, c), a.get(0, c));
            assert_eq!(p.get(2, c), b.get(3, c));
        }
    }
}
