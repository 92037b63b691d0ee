//! One-row decode megakernel (issue #11, fp16 bs1): the host side — model checks, the per-block
//! schedule and the weights' chunk layout — of the persistent kernel probed in
//! docs/benchmarks/2026-12-03-h200-session32 (`mk11/mk11.cu`: 1,401 tok/s beside the engine's 1,370).
//!
//! The engine runs it behind `TRTFORGE_MK=1` (session 33; docs/cuda.md, "Log of changes, session 33"):
//! `kernels_mk.cu` (the probe's device code ported by `docs/benchmarks/2026-12-03-h200-session32/mk11/port_mk.py`, then reading the engine's
//! metadata rows), the weights packed at load (`mk_load.rs`), the argument block `MkArgs` (layout checked
//! against g++'s), `queue_decode_step` (mod.rs) running bucket 1 as `mk_step` + `mk_advance`. Checked on
//! the H200 against the CPU reference by `TRTFORGE_MK=1 TRTFORGE_CHECKS=mk trtforge cuda-check --tinyllama`.
//! Pure Rust with no crate dependencies, so its tests also run standalone:
//! `rustc --edition 2021 -O --test src/backend/cuda/mk.rs -o /tmp/mk_test && /tmp/mk_test`.

/// The largest k of a weight chunk (16 rows × k of f16, one bulk copy into a ring slot): 576 (18 KB).
pub const CK_MAX: usize = 576;
/// The smallest k of a chunk the engine takes (smaller chunks would spend the step on their barriers).
pub const CK_MIN: usize = 128;
/// Dynamic shared memory a block may opt into on cc 9.0 (227 KB).
pub const SMEM_MAX: usize = 232_448;

/// The k of the chunks of a matrix with `k` columns: the largest multiple of 16 that divides `k`, at
/// most [`CK_MAX`] (TinyLlama 2048 and 5632: 512; SmolLM2 576 and 1536: 576 and 512), or None.
pub fn chunk_k(k: usize) -> Option<usize> {
    (1..=CK_MAX / 16).rev().map(|m| 16 * m).find(|c| k % c == 0)
}
/// Schedule entries per block (the kernel keeps its schedule in shared memory).
pub const MAXE: usize = 512;

pub const OP_QKV: i32 = 0;
pub const OP_ATT: i32 = 1;
pub const OP_O: i32 = 2;
pub const OP_GU: i32 = 3;
pub const OP_DN: i32 = 4;
pub const OP_HEAD: i32 = 5;

/// The model dimensions the kernel is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MkDims {
    pub hidden: usize,
    pub inter: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
}

impl MkDims {
    /// Why the kernel cannot run this model (the engine then keeps its per-layer launches), or Ok.
    pub fn check(&self) -> Result<(), String> {
        let d = self;
        let mut why = Vec::new();
        for (what, n) in [("hidden size", d.hidden), ("intermediate size", d.inter)] {
            match chunk_k(n) {
                Some(c) if c >= CK_MIN => {}
                _ => why.push(format!(
                    "{what} {n} has no divisor between {CK_MIN} and {CK_MAX} that is a multiple of 16 (the weight chunks' k)"
                )),
            }
        }
        if d.hidden.max(d.inter) > 8192 {
            why.push(format!(
                "hidden / intermediate size {} (the staged input holds at most 8192)",
                d.hidden.max(d.inter)
            ));
        }
        if d.head_dim != 64 {
            why.push(format!("head_dim {} (the kernel's attention is written for 64)", d.head_dim));
        }
        if d.kv_heads == 0 || d.heads % d.kv_heads != 0 || d.heads / d.kv_heads > 8 {
            why.push(format!(
                "{} query heads for {} kv heads (the kernel needs a whole number of at most 8 a kv head)",
                d.heads, d.kv_heads
            ));
        }
        if d.heads * d.head_dim != d.hidden {
            why.push(format!("heads × head_dim = {} is not the hidden size {}", d.heads * d.head_dim, d.hidden));
        }
        if d.vocab == 0 || d.vocab % 16 != 0 {
            why.push(format!("vocabulary {} is not a multiple of 16", d.vocab));
        }
        if d.layers == 0 || d.layers > 31 {
            why.push(format!("{} layers (the tags hold 5 bits of layer)", d.layers));
        }
        if why.is_empty() {
            Ok(())
        } else {
            Err(why.join("; "))
        }
    }
    /// Rows of the fused q / k / v projection.
    pub fn qkv_rows(&self) -> usize {
        self.hidden + 2 * self.kv_heads * self.head_dim
    }
    pub fn t_qkv(&self) -> usize {
        self.qkv_rows() / 16
    }
    pub fn t_o(&self) -> usize {
        self.hidden / 16
    }
    /// gate/up tiles: 8 gate rows and the same 8 up rows each.
    pub fn t_gu(&self) -> usize {
        self.inter / 8
    }
    pub fn t_dn(&self) -> usize {
        self.hidden / 16
    }
    pub fn t_head(&self) -> usize {
        self.vocab / 16
    }
    /// The chunks' k of the ops that read the hidden size (q/k/v, o, gate/up, the head): `MK_CKH`.
    pub fn ckh(&self) -> usize {
        chunk_k(self.hidden).unwrap_or(16)
    }
    /// The chunks' k of down (reads the intermediate size): `MK_CKI`.
    pub fn cki(&self) -> usize {
        chunk_k(self.inter).unwrap_or(16)
    }
    /// Ring slots a block (`MK_NSLOT`): as many as fit [`SMEM_MAX`] beside the rest, at most 12 (the probe's).
    pub fn nslot(&self) -> usize {
        (1..=12).rev().find(|&n| smem_of(n, self.slot_bytes()) <= SMEM_MAX).unwrap_or(1)
    }
    /// Bytes of a ring slot: the larger chunk.
    pub fn slot_bytes(&self) -> usize {
        32 * self.ckh().max(self.cki())
    }
    /// Dynamic shared memory of `mk_step` (kernels_mk.cu `MK_SMEM`).
    pub fn smem(&self) -> usize {
        smem_of(self.nslot(), self.slot_bytes())
    }
}

/// kernels_mk.cu's `MK_SMEM` with `nslot` ring slots of `slot` bytes: the ring, a 16 KB x area, mbarriers,
/// partial buffers + misc, the schedule.
fn smem_of(nslot: usize, slot: usize) -> usize {
    nslot * slot + 16384 + 2 * (nslot + 4) * 8 + 4 * 8 * 16 * 4 + 256 + MAXE * 4
}

/// Attention position chunks a kv head (the probe's best, `ACH=20` in kernels_mk.cu).
pub const ACH: usize = 20;
/// Threads of `mk_step`: 8 consumer warps, the loader warp, the epilogue warp.
pub const THREADS: usize = 320;

/// The longest sequence (positions + 1) whose attention items fit `mk_step`'s 16 KB x area
/// (kernels_mk.cu: 8 × 64 q floats, then per item CL = ceil(L / ACH) K rows at a stride of 33 words,
/// rounded up to 4 rows, CL V rows of 32 words and 8 × CL scores). Engines with a longer KV cache do
/// not get the megakernel (a captured decode graph serves every position).
pub fn max_len() -> usize {
    let need = |l: usize| {
        let cl = l.div_ceil(ACH);
        2048 + 132 * ((cl + 3) & !3) + 128 * cl + 32 * cl
    };
    let mut l = 1;
    while need(l + 1) <= 16384 {
        l += 1;
    }
    l
}

/// `mk_step`'s argument block, field for field kernels_mk.cu's `MK_Args` (device pointers as u64).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MkArgs {
    pub wqkv: u64,
    pub wo: u64,
    pub wgu: u64,
    pub wdn: u64,
    pub whead: u64,
    pub emb: u64,
    pub nattn: u64,
    pub nffn: u64,
    pub nfinal: u64,
    pub kc: u64,
    pub vc: u64,
    pub tokp: u64,
    pub posp: u64,
    pub slotp: u64,
    pub epochp: u64,
    pub slots: i32,
    pub rcos: u64,
    pub rsin: u64,
    pub hx: u64,
    pub hm: u64,
    pub qt: u64,
    pub kvt: u64,
    pub aot: u64,
    pub actt: u64,
    pub part: u64,
    pub logits: u64,
    pub prt: u64,
    pub gctr: u64,
    pub ctr: u64,
    pub best: u64,
    pub sched: u64,
    pub nsched: u64,
    pub pos: i32,
    pub epoch: i32,
    pub tok: i32,
    pub err: u64,
    pub prof: u64,
    pub dbg: u64,
    pub trace: u64,
}

/// Device buffers `mk_step` needs besides the model's, in elements of their type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MkSizes {
    /// Tagged words (u64): hx (layers + 1, hidden), hm (layers, hidden), qt (hidden), kvt (kv heads, 128),
    /// aot (hidden), actt (inter); zeroed once (tag 0 is never current: epochs start at 1).
    pub tags: usize,
    /// Attention records (f32): (heads, ACH, 68).
    pub part: usize,
    /// Ticket counters (i32): (6, layers), zeroed once, never reset.
    pub gctr: usize,
    /// Attention merge counters (i32): (layers, kv heads), zeroed once.
    pub ctr: usize,
    /// Argmax keys (u64): 3.
    pub best: usize,
    /// The schedule (i32): (grid, MAXE) and (grid).
    pub sched: usize,
    /// The packed weights (f16): q/k/v, o, gate+up, down of every layer and the head.
    pub packed: usize,
}

impl MkSizes {
    pub fn of(d: &MkDims, grid: usize) -> MkSizes {
        let (h, l) = (d.hidden, d.layers);
        MkSizes {
            tags: (l + 1) * h + l * h + h + d.kv_heads * 128 + h + d.inter,
            part: d.heads * ACH * 68,
            gctr: 6 * l,
            ctr: l * d.kv_heads,
            best: 3,
            sched: grid * MAXE + grid,
            packed: l * (d.qkv_rows() * h + h * h + 2 * d.inter * h + h * d.inter) + d.vocab * h,
        }
    }
}

/// One schedule entry: op | layer << 3 | tile << 8.
pub fn entry(op: i32, layer: usize, tile: usize) -> i32 {
    op | ((layer as i32) << 3) | ((tile as i32) << 8)
}

/// The per-block schedule, `grid` blocks × `MAXE` entries (row-major) and each block's count, as the
/// probe's defaults: qkv, attention items (`ach` chunks a kv head), o and down tiles placed on the
/// least-loaded block by bytes; gate/up and the head handed out at run time by ticket (one marker
/// entry a block). `att_cost` is an attention item's weight in bytes (the probe: 32,768).
pub fn build_schedule(d: &MkDims, grid: usize, ach: usize, att_cost: f64) -> Result<(Vec<i32>, Vec<i32>), String> {
    d.check()?;
    if grid == 0 || ach == 0 {
        return Err("schedule: no blocks or no attention chunks".into());
    }
    // A tile's bytes: 16 rows × k f16.
    let (tb_h, tb_i) = ((32 * d.hidden) as f64, (32 * d.inter) as f64);
    let mut sched = vec![0i32; grid * MAXE];
    let mut n = vec![0usize; grid];
    let mut load = vec![0f64; grid];
    let mut push = |b: usize, e: i32, n: &mut Vec<usize>| -> Result<(), String> {
        if n[b] >= MAXE {
            return Err(format!("schedule: block {b} over {MAXE} entries"));
        }
        sched[b * MAXE + n[b]] = e;
        n[b] += 1;
        Ok(())
    };
    let least = |load: &Vec<f64>| -> usize {
        let mut b = 0;
        for i in 1..load.len() {
            if load[i] < load[b] {
                b = i;
            }
        }
        b
    };
    for l in 0..d.layers {
        for t in 0..d.t_qkv() {
            let b = least(&load);
            load[b] += tb_h;
            push(b, entry(OP_QKV, l, t), &mut n)?;
        }
        for t in 0..d.kv_heads * ach {
            let b = least(&load);
            load[b] += att_cost;
            push(b, entry(OP_ATT, l, t), &mut n)?;
        }
        for t in 0..d.t_o() {
            let b = least(&load);
            load[b] += tb_h;
            push(b, entry(OP_O, l, t), &mut n)?;
        }
        let gu = d.t_gu() as f64 * tb_h / grid as f64;
        for (b, lb) in load.iter_mut().enumerate() {
            *lb += gu;
            push(b, entry(OP_GU, l, 0), &mut n)?;
        }
        for t in 0..d.t_dn() {
            let b = least(&load);
            load[b] += tb_i;
            push(b, entry(OP_DN, l, t), &mut n)?;
        }
    }
    for b in 0..grid {
        push(b, entry(OP_HEAD, 0, 0), &mut n)?;
    }
    Ok((sched, n.into_iter().map(|x| x as i32).collect()))
}

/// Which weight row chunk row `r` (0..16) of qkv tile `t` holds: q and k tiles pair each RoPE
/// rotation's two dimensions (d, d + 32) of one head as rows (r, r + 8); v tiles are 16 plain rows.
/// Rows index the fused (q; k; v) projection.
pub fn qkv_row(d: &MkDims, t: usize, r: usize) -> usize {
    let (h, nkv, hd) = (d.hidden, d.kv_heads, d.head_dim);
    let t_qk = d.t_qkv() - nkv * hd / 16;
    if t < t_qk {
        let isq = t < d.heads * 4;
        let hh = if isq { t / 4 } else { (t - d.heads * 4) / 4 };
        let d0 = (t % 4) * 8;
        let dim = if r < 8 { d0 + r } else { d0 + 32 + (r - 8) };
        return (if isq { 0 } else { h }) + hh * hd + dim;
    }
    h + nkv * hd + (t - t_qk) * 16 + r
}

/// How a weight matrix is cut into chunks' rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowMap {
    /// 16 consecutive rows a tile (o, down, the head).
    Plain,
    /// `qkv_row`.
    Qkv,
    /// 8 gate rows then the same 8 up rows (two source matrices).
    GateUp,
}

/// The source of element `j` (0..8) of lane `ln`'s A fragment for k-tile `kt` of chunk `c` (of k `ck`) of
/// tile `t`: (which matrix: 0 or 1 for gate / up, row, column). Chunk halves are laid out
/// [k tile ck / 16][lane 32][8 halves], each lane's 8 halves its `mma.m16n8k16` A fragment.
#[allow(clippy::too_many_arguments)]
pub fn chunk_source(
    d: &MkDims,
    map: RowMap,
    ck: usize,
    t: usize,
    c: usize,
    kt: usize,
    ln: usize,
    j: usize,
) -> (usize, usize, usize) {
    let (g, t4) = (ln >> 2, ln & 3);
    let kb = c * ck + kt * 16 + 2 * t4;
    let rr = [g, g, g + 8, g + 8, g, g, g + 8, g + 8][j];
    let kk = [kb, kb + 1, kb, kb + 1, kb + 8, kb + 9, kb + 8, kb + 9][j];
    match map {
        RowMap::Plain => (0, t * 16 + rr, kk),
        RowMap::Qkv => (0, qkv_row(d, t, rr), kk),
        RowMap::GateUp => (usize::from(rr >= 8), t * 8 + (rr & 7), kk),
    }
}

/// Packs row-major (rows, k) f16 bits into chunks of k [`chunk_k`]`(k)`, tile after tile, a tile's chunks
/// in k order. `src2` is the up matrix for `RowMap::GateUp`.
pub fn pack_chunks(
    d: &MkDims,
    map: RowMap,
    src: &[u16],
    src2: Option<&[u16]>,
    rows: usize,
    k: usize,
) -> Result<Vec<u16>, String> {
    let ck = match chunk_k(k) {
        Some(c) if c >= CK_MIN => c,
        _ => {
            return Err(format!(
                "pack: k {k} has no chunk k (a multiple of 16 between {CK_MIN} and {CK_MAX} dividing it)"
            ))
        }
    };
    let out_rows = if map == RowMap::GateUp { 2 * rows } else { rows };
    if out_rows % 16 != 0 || src.len() != rows * k || (map == RowMap::GateUp) != src2.is_some() {
        return Err("pack: shapes do not match the row map".into());
    }
    if let Some(s2) = src2 {
        if s2.len() != rows * k {
            return Err("pack: the up matrix's shape differs from the gate matrix's".into());
        }
    }
    let (tiles, kc) = (out_rows / 16, k / ck);
    let mut out = vec![0u16; out_rows * k];
    for t in 0..tiles {
        for c in 0..kc {
            let base = (t * kc + c) * 16 * ck;
            for kt in 0..ck / 16 {
                for ln in 0..32 {
                    for j in 0..8 {
                        let (m, row, col) = chunk_source(d, map, ck, t, c, kt, ln, j);
                        let s = if m == 0 { src } else { src2.unwrap() };
                        out[base + (kt * 32 + ln) * 8 + j] = s[row * k + col];
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn tinyllama() -> MkDims {
        MkDims { hidden: 2048, inter: 5632, layers: 22, heads: 32, kv_heads: 4, head_dim: 64, vocab: 32000 }
    }
    fn smollm2() -> MkDims {
        MkDims { hidden: 576, inter: 1536, layers: 30, heads: 9, kv_heads: 3, head_dim: 64, vocab: 49152 }
    }
    fn small() -> MkDims {
        MkDims { hidden: 512, inter: 1024, layers: 2, heads: 8, kv_heads: 1, head_dim: 64, vocab: 64 }
    }

    #[test]
    fn models_the_kernel_cannot_run_are_refused_with_reasons() {
        assert!(tinyllama().check().is_ok());
        assert!(smollm2().check().is_ok());
        // hidden 600 is not a multiple of 16; 9 query heads do not share 2 kv heads; 16 a kv head is more than the
        // attention items' warps; an intermediate size whose largest chunk would be 16 wide.
        let odd = MkDims { hidden: 600, heads: 9, kv_heads: 2, ..smollm2() };
        let e = odd.check().unwrap_err();
        assert!(e.contains("hidden size 600"), "{e}");
        assert!(e.contains("9 query heads for 2 kv heads"), "{e}");
        let wide = MkDims { kv_heads: 2, ..tinyllama() };
        assert!(wide.check().unwrap_err().contains("32 query heads for 2 kv heads"));
        let thin = MkDims { inter: 16 * 67, ..tinyllama() };
        assert!(thin.check().unwrap_err().contains("intermediate size 1072"));
        let deep = MkDims { layers: 32, ..tinyllama() };
        assert!(deep.check().unwrap_err().contains("32 layers"));
        let long = MkDims { head_dim: 128, ..tinyllama() };
        assert!(long.check().unwrap_err().contains("head_dim 128"));
    }

    #[test]
    fn chunks_are_the_largest_multiple_of_16_dividing_k_up_to_576() {
        assert_eq!(chunk_k(2048), Some(512));
        assert_eq!(chunk_k(5632), Some(512)); // 2^9 · 11
        assert_eq!(chunk_k(576), Some(576));
        assert_eq!(chunk_k(1536), Some(512));
        assert_eq!(chunk_k(960), Some(480)); // SmolLM2-360M's hidden size
        assert_eq!(chunk_k(600), None);
        for k in (16..20000).step_by(16) {
            let c = chunk_k(k).unwrap();
            assert!(k % c == 0 && c % 16 == 0 && c <= CK_MAX);
            assert!((c + 16..=CK_MAX).step_by(16).all(|b| k % b != 0), "{k}: {c} is not the largest");
        }
        let (t, s) = (tinyllama(), smollm2());
        assert_eq!((t.ckh(), t.cki(), t.nslot(), t.slot_bytes()), (512, 512, 12, 16384));
        // SmolLM2: one 18 KB chunk a hidden-size tile, three 16 KB chunks a down tile; 11 slots of 18 KB fit.
        assert_eq!((s.ckh(), s.cki(), s.nslot(), s.slot_bytes()), (576, 512, 11, 18432));
        assert!(s.smem() <= SMEM_MAX && smem_of(12, 18432) > SMEM_MAX);
    }

    #[test]
    fn the_argument_block_has_the_kernels_layout() {
        // Offsets of kernels_mk.cu's `MK_Args` as g++ lays the same struct out (offsetof, x86-64; the device
        // ABI lays out pointers and ints the same way), session 32.
        let a = MkArgs::default();
        let base = &a as *const MkArgs as usize;
        let off = |p: *const u8| p as usize - base;
        let want = [
            (off(&a.wqkv as *const u64 as *const u8), 0),
            (off(&a.emb as *const u64 as *const u8), 40),
            (off(&a.nattn as *const u64 as *const u8), 48),
            (off(&a.kc as *const u64 as *const u8), 72),
            (off(&a.tokp as *const u64 as *const u8), 88),
            (off(&a.epochp as *const u64 as *const u8), 112),
            (off(&a.slots as *const i32 as *const u8), 120),
            (off(&a.rcos as *const u64 as *const u8), 128),
            (off(&a.hx as *const u64 as *const u8), 144),
            (off(&a.actt as *const u64 as *const u8), 184),
            (off(&a.part as *const u64 as *const u8), 192),
            (off(&a.logits as *const u64 as *const u8), 200),
            (off(&a.best as *const u64 as *const u8), 232),
            (off(&a.sched as *const u64 as *const u8), 240),
            (off(&a.pos as *const i32 as *const u8), 256),
            (off(&a.tok as *const i32 as *const u8), 264),
            (off(&a.err as *const u64 as *const u8), 272),
            (off(&a.trace as *const u64 as *const u8), 296),
        ];
        for (i, (got, w)) in want.iter().enumerate() {
            assert_eq!(got, w, "field {i}");
        }
        assert_eq!(std::mem::size_of::<MkArgs>(), 304);
    }

    #[test]
    fn the_longest_sequence_fits_the_x_area() {
        // The probe's own check (mk11.cu main): at L = 640, ACH = 20: 2048 + 132·32 + 128·32 + 32·32 = 11,392 B.
        assert!(max_len() >= 640);
        let cl = (max_len() + 1).div_ceil(ACH);
        assert!(2048 + 132 * ((cl + 3) & !3) + 128 * cl + 32 * cl > 16384);
        assert_eq!(max_len(), 960);
    }

    #[test]
    fn buffer_sizes_of_tinyllama() {
        let d = tinyllama();
        let z = MkSizes::of(&d, 132);
        // The probe's allocation (mk11.cu): ntag = (NL + 1) H + NL H + H + NKV 128 + H + INTER.
        assert_eq!(z.tags, 23 * 2048 + 22 * 2048 + 2048 + 512 + 2048 + 5632);
        // The probe's weight bytes a step (mk11.cu: 2 (nq + no + 2 ng + ng + nh), printed as 2.069 GB).
        let (nq, no, ng, nh) = (22 * 2560 * 2048, 22 * 2048 * 2048, 22 * 5632 * 2048, 32000 * 2048);
        assert_eq!(z.packed * 2, 2 * (nq + no + 2 * ng + ng + nh));
        assert_eq!(z.packed * 2, 2_068_840_448);
        // The probe's printed dynamic shared memory ("smem 217600", call 11), under the H200's opt-in 232,448.
        assert_eq!(d.smem(), 217_600);
    }

    #[test]
    fn every_static_tile_is_scheduled_once_and_markers_once_a_block() {
        for d in [tinyllama(), smollm2()] {
            every_tile_once(&d, 132);
            every_tile_once(&d, 114); // an H100 PCIe's SMs
        }
    }

    fn every_tile_once(d: &MkDims, grid: usize) {
        let ach = 20;
        let (s, n) = build_schedule(d, grid, ach, 32768.0).unwrap();
        let mut seen = HashSet::new();
        let mut gu = vec![0usize; d.layers];
        let mut head = 0;
        for b in 0..grid {
            assert!(n[b] as usize <= MAXE);
            let mut last_layer = 0;
            for e in &s[b * MAXE..b * MAXE + n[b] as usize] {
                let (op, l, t) = (e & 7, ((e >> 3) & 31) as usize, (e >> 8) as usize);
                assert!(l >= last_layer || op == OP_HEAD, "entries in layer order");
                last_layer = l;
                match op {
                    OP_GU => gu[l] += 1,
                    OP_HEAD => head += 1,
                    _ => assert!(seen.insert((op, l, t)), "({op}, {l}, {t}) twice"),
                }
            }
        }
        let want = d.layers * (d.t_qkv() + d.kv_heads * ach + d.t_o() + d.t_dn());
        assert_eq!(seen.len(), want);
        assert!(gu.iter().all(|&c| c == grid));
        assert_eq!(head, grid);
    }

    /// Each block's bytes in the schedule `(s, n)`, as the probe accounts them: 4 or 11 chunks a
    /// static tile, 32,768 an attention item, `gu` for a gate/up marker (the layer's bytes spread
    /// over the blocks), nothing for the head's.
    fn block_bytes(s: &[i32], n: &[i32], gu: f64) -> Vec<f64> {
        let chb = 16384.0; // TinyLlama's chunks: 16 rows × 512 k
        (0..n.len())
            .map(|b| {
                s[b * MAXE..b * MAXE + n[b] as usize]
                    .iter()
                    .map(|&e| match e & 7 {
                        OP_QKV | OP_O => 4.0 * chb,
                        OP_DN => 11.0 * chb,
                        OP_ATT => 32768.0,
                        OP_GU => gu,
                        _ => 0.0,
                    })
                    .sum()
            })
            .collect()
    }

    #[test]
    fn the_schedule_balances_bytes_within_one_down_tile() {
        let d = tinyllama();
        let (s, n) = build_schedule(&d, 132, 20, 32768.0).unwrap();
        let chb = 16384.0; // TinyLlama's chunks: 16 rows × 512 k
        let per = block_bytes(&s, &n, 0.0);
        let (mx, mn) = (per.iter().cloned().fold(0.0, f64::max), per.iter().cloned().fold(f64::MAX, f64::min));
        assert!(mx - mn <= 11.0 * chb, "max {mx} min {mn}");
    }

    #[test]
    fn the_schedule_matches_the_probes() {
        // The C++ probe's `build_sched` printed, for this model on 132 blocks with 20 attention chunks
        // (docs/benchmarks/2026-12-03-h200-session32/call11/out/mk11_a.log): "max 14789.3 KB vs mean
        // 14762.7 KB a block, max 107 entries".
        let d = tinyllama();
        let grid = 132;
        let (s, n) = build_schedule(&d, grid, 20, 32768.0).unwrap();
        let gu = (d.t_gu() * 4) as f64 * 16384.0 / grid as f64;
        let per = block_bytes(&s, &n, gu);
        let mx = per.iter().cloned().fold(0.0, f64::max) / 1024.0;
        let mean = per.iter().sum::<f64>() / grid as f64 / 1024.0;
        assert_eq!(format!("{mx:.1} {mean:.1}"), "14789.3 14762.7");
        assert_eq!(n.iter().max(), Some(&107));
    }

    #[test]
    fn a_chunk_lane_holds_the_ptx_mma_a_fragment() {
        // PTX ISA, mma.m16n8k16 with .f16 A (row-major 16 × 16): a lane holds 8 halves a0..a7;
        // groupID = lane >> 2, threadID_in_group = lane % 4; row = groupID for a0, a1, a4, a5 and
        // groupID + 8 for a2, a3, a6, a7; col = threadID_in_group * 2 + (i & 1) for a0..a3 and
        // the same + 8 for a4..a7.
        let d = tinyllama();
        for ln in 0..32 {
            for i in 0..8 {
                let (m, row, col) = chunk_source(&d, RowMap::Plain, 512, 0, 0, 0, ln, i);
                let want_row = (ln >> 2) + if matches!(i, 2 | 3 | 6 | 7) { 8 } else { 0 };
                let want_col = (ln % 4) * 2 + (i & 1) + if i >= 4 { 8 } else { 0 };
                assert_eq!((m, row, col), (0, want_row, want_col), "lane {ln} a{i}");
            }
        }
        // k tile kt of chunk c starts at column c * 512 + kt * 16; tile t at row 16 t.
        assert_eq!(chunk_source(&d, RowMap::Plain, 512, 3, 2, 5, 0, 0), (0, 48, 2 * 512 + 5 * 16));
    }

    #[test]
    fn packing_is_a_permutation_for_every_row_map() {
        let d = small();
        let k = 1024;
        for (map, rows) in [(RowMap::Plain, 64), (RowMap::Qkv, d.qkv_rows()), (RowMap::GateUp, 32)] {
            let src: Vec<u16> = (0..rows * k).map(|i| i as u16).collect();
            let src2: Vec<u16> = (0..rows * k).map(|i| (i + rows * k) as u16).collect();
            let two = map == RowMap::GateUp;
            let out = pack_chunks(&d, map, &src, two.then_some(&src2[..]), rows, k).unwrap();
            let mut all: Vec<u32> = out.iter().map(|&v| v as u32).collect();
            all.sort_unstable();
            let n = if two { 2 * rows * k } else { rows * k };
            let want: Vec<u32> = (0..n as u32).map(|v| v & 0xffff).collect::<Vec<_>>();
            let mut want = want;
            want.sort_unstable();
            assert_eq!(all, want, "{map:?}");
        }
        // SmolLM2's chunks: k 576 (one chunk of 36 k tiles) and 1536 (three of 32).
        let s = smollm2();
        for (map, rows, k) in [(RowMap::Qkv, s.qkv_rows(), 576), (RowMap::Plain, 32, 1536), (RowMap::GateUp, 16, 576)] {
            let src: Vec<u16> = (0..rows * k).map(|i| (i % 65521) as u16).collect();
            let two = map == RowMap::GateUp;
            let src2: Vec<u16> = (0..rows * k).map(|i| ((i + rows * k) % 65521) as u16).collect();
            let out = pack_chunks(&s, map, &src, two.then_some(&src2[..]), rows, k).unwrap();
            let ck = chunk_k(k).unwrap();
            // every element where chunk_source says, each source element once
            let mut hit = vec![0u8; if two { 2 * rows * k } else { rows * k }];
            let out_rows = if two { 2 * rows } else { rows };
            for t in 0..out_rows / 16 {
                for c in 0..k / ck {
                    for kt in 0..ck / 16 {
                        for ln in 0..32 {
                            for j in 0..8 {
                                let (m, row, col) = chunk_source(&s, map, ck, t, c, kt, ln, j);
                                let sv = if m == 0 { &src } else { &src2 };
                                assert_eq!(
                                    out[(t * (k / ck) + c) * 16 * ck + (kt * 32 + ln) * 8 + j],
                                    sv[row * k + col]
                                );
                                hit[m * rows * k + row * k + col] += 1;
                            }
                        }
                    }
                }
            }
            assert!(hit.iter().all(|&h| h == 1), "{map:?}");
        }
        assert!(pack_chunks(&d, RowMap::Plain, &[0; 16 * 100], None, 16, 100).is_err());
        assert!(pack_chunks(&d, RowMap::GateUp, &[0; 16 * 512], None, 16, 512).is_err());
    }

    #[test]
    fn qkv_tiles_pair_rope_dimensions_and_cover_every_row_once() {
        for d in [tinyllama(), smollm2()] {
            qkv_tiles_cover(&d);
        }
    }

    fn qkv_tiles_cover(d: &MkDims) {
        let mut rows = HashSet::new();
        for t in 0..d.t_qkv() {
            for r in 0..16 {
                assert!(rows.insert(qkv_row(d, t, r)));
            }
            if t < d.t_qkv() - d.kv_heads * d.head_dim / 16 {
                for r in 0..8 {
                    let (a, b) = (qkv_row(d, t, r), qkv_row(d, t, r + 8));
                    assert_eq!(b, a + 32, "tile {t}: rows {r} and {} are one rotation's pair", r + 8);
                    assert_eq!(a / 64, b / 64, "same head");
                }
            }
        }
        assert_eq!(rows.len(), d.qkv_rows());
        assert!(rows.iter().all(|&r| r < d.qkv_rows()));
    }
}
