//! Host-side weight preparation: RTN quantization, the file layouts of quantized weights, and the
//! one conversion from those layouts into the kernels' layouts. Plain Rust, tested on CPU.
//!
//! File layouts (as docs/formats.md will document them for engine directories):
//! - int8: `q` (N, K) i8 symmetric per output row, `scales` (N) f16; `w = q · s`.
//! - int4: `q` (N, K/2) u8, two elements per byte along the input dim, element 2j in the low nibble
//!   and 2j+1 in the high one, unsigned 0..15; `scales` and `zeros` (N, K/group) f16;
//!   `w = (q − z) · s`. Without stored zero points z = 8 (symmetric).
//!
//! Kernel layouts (what [`DeviceLinear`] holds):
//! - int8: bytes `q + 128` (so `0x4B000000 | b` is the float 2²³ + b + ... exactly; see kernels.cu).
//! - int4: each little-endian 32-bit word holds 8 consecutive elements, element 2i at nibble i and
//!   2i+1 at nibble i+4, so `(w >> 4i) & 0x000F000F` yields the pair (2i, 2i+1) as two f16 lanes.
use super::kernels::WeightFormat;
use half::f16;

/// A linear weight in the kernels' layout, still on the host. Rows are output features.
#[derive(Debug, Clone, PartialEq)]
pub struct HostLinear {
    pub fmt: WeightFormat,
    pub n: usize,
    pub k: usize,
    /// (N, row bytes) in the kernel layout.
    pub data: Vec<u8>,
    /// int8: (N); int4: (N, K/group). Empty otherwise.
    pub scales: Vec<f16>,
    /// int4: (N, K/group). Empty otherwise.
    pub zeros: Vec<f16>,
}

impl HostLinear {
    pub fn row_bytes(&self) -> usize {
        match self.fmt {
            WeightFormat::F32 => self.k * 4,
            WeightFormat::F16 => self.k * 2,
            WeightFormat::I8 => self.k,
            WeightFormat::I4 { .. } => self.k / 2,
        }
    }
    fn per_row_meta(&self) -> usize {
        match self.fmt {
            WeightFormat::I8 => 1,
            WeightFormat::I4 { group } => self.k / group,
            _ => 0,
        }
    }

    /// Converts an f32 (N, K) weight, quantizing with round-to-nearest where the format asks.
    pub fn from_f32(w: &[f32], n: usize, k: usize, fmt: WeightFormat) -> Self {
        assert_eq!(w.len(), n * k, "weight of {} elements is not {n}×{k}", w.len());
        match fmt {
            WeightFormat::F32 => {
                let data = w.iter().flat_map(|x| x.to_le_bytes()).collect();
                HostLinear { fmt, n, k, data, scales: vec![], zeros: vec![] }
            }
            WeightFormat::F16 => {
                let data = w.iter().flat_map(|x| f16::from_f32(*x).to_le_bytes()).collect();
                HostLinear { fmt, n, k, data, scales: vec![], zeros: vec![] }
            }
            WeightFormat::I8 => {
                let (q, s) = quantize_i8(w, n, k);
                Self::from_file_i8(&q, s, n, k)
            }
            WeightFormat::I4 { group } => {
                let (q, s, z) = quantize_i4(w, n, k, group, true);
                Self::from_file_i4(&q, s, Some(z), n, k, group)
            }
        }
    }

    /// From the int8 file layout.
    pub fn from_file_i8(q: &[i8], scales: Vec<f16>, n: usize, k: usize) -> Self {
        assert_eq!(q.len(), n * k);
        assert_eq!(scales.len(), n);
        let data = q.iter().map(|&v| (v as u8) ^ 0x80).collect();
        HostLinear { fmt: WeightFormat::I8, n, k, data, scales, zeros: vec![] }
    }

    /// From the int4 file layout; `zeros` None means symmetric (z = 8).
    pub fn from_file_i4(q: &[u8], scales: Vec<f16>, zeros: Option<Vec<f16>>, n: usize, k: usize, group: usize) -> Self {
        assert!(k % 8 == 0 && k % group == 0, "int4 needs K ({k}) divisible by 8 and by the group ({group})");
        assert_eq!(q.len(), n * k / 2);
        assert_eq!(scales.len(), n * k / group);
        let zeros = zeros.unwrap_or_else(|| vec![f16::from_f32(8.0); scales.len()]);
        assert_eq!(zeros.len(), scales.len());
        let mut data = vec![0u8; q.len()];
        for (src, dst) in q.chunks_exact(4).zip(data.chunks_exact_mut(4)) {
            // src byte j: element 2j (low), 2j+1 (high) -> word nibble i = element 2i, i+4 = 2i+1
            let mut word = 0u32;
            for (j, &b) in src.iter().enumerate() {
                let (lo, hi) = ((b & 15) as u32, (b >> 4) as u32);
                word |= lo << (4 * j);
                word |= hi << (4 * j + 16);
            }
            dst.copy_from_slice(&word.to_le_bytes());
        }
        HostLinear { fmt: WeightFormat::I4 { group }, n, k, data, scales, zeros }
    }

    /// Element (r, c) as the kernels see it, in f32 (for tests and reference weights).
    pub fn get(&self, r: usize, c: usize) -> f32 {
        let row = &self.data[r * self.row_bytes()..(r + 1) * self.row_bytes()];
        match self.fmt {
            WeightFormat::F32 => f32::from_le_bytes(row[c * 4..c * 4 + 4].try_into().unwrap_or([0; 4])),
            WeightFormat::F16 => f16::from_le_bytes([row[c * 2], row[c * 2 + 1]]).to_f32(),
            WeightFormat::I8 => ((row[c] ^ 0x80) as i8) as f32 * self.scales[r].to_f32(),
            WeightFormat::I4 { group } => {
                let word = u32::from_le_bytes(row[(c / 8) * 4..(c / 8) * 4 + 4].try_into().unwrap_or([0; 4]));
                let e = c % 8;
                let shift = if e % 2 == 0 { 4 * (e / 2) } else { 4 * (e / 2) + 16 };
                let q = ((word >> shift) & 15) as f32;
                let g = r * (self.k / group) + c / group;
                (q - self.zeros[g].to_f32()) * self.scales[g].to_f32()
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
            zeros: parts.iter().flat_map(|p| p.zeros.iter().copied()).collect(),
        }
    }

    /// Reorders rows: physical row i of the result is row `order[i]` of `self`.
    pub fn permute_rows(&self, order: &[usize]) -> Self {
        assert_eq!(order.len(), self.n);
        let rb = self.row_bytes();
        let m = self.per_row_meta();
        let mut out = HostLinear { data: Vec::with_capacity(self.data.len()), scales: vec![], zeros: vec![], ..*self };
        for &r in order {
            out.data.extend_from_slice(&self.data[r * rb..(r + 1) * rb]);
            if m > 0 {
                out.scales.extend_from_slice(&self.scales[r * m..(r + 1) * m]);
            }
            if !self.zeros.is_empty() {
                out.zeros.extend_from_slice(&self.zeros[r * m..(r + 1) * m]);
            }
        }
        out
    }

    /// Device bytes of data, scales and zeros.
    pub fn bytes(&self) -> usize {
        self.data.len() + 2 * (self.scales.len() + self.zeros.len())
    }
}

/// Symmetric per-row int8: s = max|w| / 127, q = round(w / s).
pub fn quantize_i8(w: &[f32], n: usize, k: usize) -> (Vec<i8>, Vec<f16>) {
    let mut q = Vec::with_capacity(n * k);
    let mut s = Vec::with_capacity(n);
    for row in w.chunks_exact(k) {
        let amax = row.iter().fold(0.0f32, |a, &b| a.max(b.abs()));
        let sc = f16::from_f32(if amax > 0.0 { amax / 127.0 } else { 1.0 });
        let scf = sc.to_f32();
        q.extend(row.iter().map(|&x| (x / scf).round().clamp(-127.0, 127.0) as i8));
        s.push(sc);
    }
    (q, s)
}

/// Group-wise int4 along the input dim, file layout. Asymmetric (min/max, integer zero point) or
/// symmetric (z = 8, s = max|w| / 7).
pub fn quantize_i4(w: &[f32], n: usize, k: usize, group: usize, asymmetric: bool) -> (Vec<u8>, Vec<f16>, Vec<f16>) {
    assert!(k % group == 0 && k % 2 == 0);
    let mut qv = vec![0u8; n * k]; // one element per byte first
    let mut s = Vec::with_capacity(n * k / group);
    let mut z = Vec::with_capacity(n * k / group);
    for (gi, g) in w.chunks_exact(group).enumerate() {
        let (sc, zp) = if asymmetric {
            let mn = g.iter().fold(f32::INFINITY, |a, &b| a.min(b)).min(0.0);
            let mx = g.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)).max(0.0);
            let sc = if mx > mn { (mx - mn) / 15.0 } else { 1.0 };
            let sc = f16::from_f32(sc).to_f32();
            (sc, (-mn / sc).round().clamp(0.0, 15.0))
        } else {
            let amax = g.iter().fold(0.0f32, |a, &b| a.max(b.abs()));
            (f16::from_f32(if amax > 0.0 { amax / 7.0 } else { 1.0 }).to_f32(), 8.0)
        };
        for (j, &x) in g.iter().enumerate() {
            qv[gi * group + j] = ((x / sc).round() + zp).clamp(0.0, 15.0) as u8;
        }
        s.push(f16::from_f32(sc));
        z.push(f16::from_f32(zp));
    }
    let packed = qv.chunks_exact(2).map(|p| p[0] | (p[1] << 4)).collect();
    (packed, s, z)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::SplitMix64;

    fn rand(n: usize, seed: u64) -> Vec<f32> {
        let mut r = SplitMix64(seed);
        (0..n).map(|_| r.next_f32() * 2.0 - 1.0).collect()
    }

    #[test]
    fn int8_roundtrip_error_is_half_a_step() {
        let (n, k) = (16, 64);
        let w = rand(n * k, 1);
        let l = HostLinear::from_f32(&w, n, k, WeightFormat::I8);
        let d = l.dequantize();
        for r in 0..n {
            let s = l.scales[r].to_f32();
            for c in 0..k {
                assert!((d[r * k + c] - w[r * k + c]).abs() <= 0.5 * s + 1e-6);
            }
        }
        // kernel bytes are q + 128
        let (q, _) = quantize_i8(&w, n, k);
        assert_eq!(l.data[3], (q[3] as u8) ^ 0x80);
    }

    #[test]
    fn int4_kernel_layout_matches_file_layout() {
        let (n, k, g) = (4, 128, 64);
        let w = rand(n * k, 2);
        let (q, s, z) = quantize_i4(&w, n, k, g, true);
        let l = HostLinear::from_file_i4(&q, s.clone(), Some(z.clone()), n, k, g);
        for r in 0..n {
            for c in 0..k {
                let byte = q[(r * k + c) / 2];
                let qq = if c % 2 == 0 { byte & 15 } else { byte >> 4 } as f32;
                let gi = r * (k / g) + c / g;
                let want = (qq - z[gi].to_f32()) * s[gi].to_f32();
                assert_eq!(l.get(r, c), want, "({r},{c})");
                assert!((l.get(r, c) - w[r * k + c]).abs() <= 0.5 * s[gi].to_f32() + 1e-6);
            }
        }
        // the kernel's extraction: (word >> 4i) & 0x000F000F holds elements (2i, 2i+1)
        let word = u32::from_le_bytes(l.data[0..4].try_into().unwrap());
        for (i, &b) in q.iter().take(4).enumerate() {
            let pair = (word >> (4 * i)) & 0x000F_000F;
            assert_eq!(pair & 15, (b & 15) as u32);
            assert_eq!(pair >> 16, (b >> 4) as u32);
        }
    }

    #[test]
    fn int4_symmetric_defaults_zero_to_8() {
        let (q, s, z) = quantize_i4(&rand(256, 3), 2, 128, 128, false);
        assert!(z.iter().all(|z| z.to_f32() == 8.0));
        let a = HostLinear::from_file_i4(&q, s.clone(), None, 2, 128, 128);
        let b = HostLinear::from_file_i4(&q, s, Some(z), 2, 128, 128);
        assert_eq!(a, b);
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
        let a = HostLinear::from_f32(&rand(n * k, 4), n, k, WeightFormat::I4 { group: 32 });
        let b = HostLinear::from_f32(&rand(n * k, 5), n, k, WeightFormat::I4 { group: 32 });
        let cat = HostLinear::concat_rows(&[a.clone(), b.clone()]);
        let p = cat.permute_rows(&[5, 0, 7, 1, 2, 3, 4, 6]);
        for c in 0..k {
            assert_eq!(p.get(0, c), b.get(1, c));
            assert_eq!(p.get(1, c), a.get(0, c));
            assert_eq!(p.get(2, c), b.get(3, c));
        }
    }
}
