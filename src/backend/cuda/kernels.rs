//! CUDA C source of the engine's kernels, specialized per model.
//!
//! `kernels.cu` is generic CUDA C (no headers, no architecture-specific instructions); the model's
//! dimensions are prepended as `#define`s so loops have compile-time trip counts, and only the GEMV
//! instances the model needs are generated. Everything here is plain string work, tested on CPU.
use crate::model::LlamaConfig;
use crate::quant::kv::KvCacheDtype;
use std::fmt::Write;

/// The kernel source file, embedded at build time.
pub const KERNELS_CU: &str = include_str!("kernels.cu");
/// The wgmma GEMM (`tcg4_*`), appended to [`KERNELS_CU`] for the sm_90a module only.
pub const KERNELS_TCG4_CU: &str = include_str!("kernels_tcg4.cu");
/// Session 28: the W8A8 FP8 wgmma decode GEMM (`f8g_*`), appended to [`KERNELS_CU`] for the sm_90a
/// module of fp8 engines whose linears run the FP8 GEMM path ([`KernelSpec::f8g`]).
pub const KERNELS_F8G_CU: &str = include_str!("kernels_f8g.cu");
/// Session 37: the quantized batched decode GEMM (`wq_*`, see wq.rs), appended to [`KERNELS_CU`] for the sm_90a
/// module of int8 / int4 g128 / fp8 engines on cc 9.0 unless `TRTFORGE_WQ=0` ([`KernelSpec::wq`]).
pub const KERNELS_WQ_CU: &str = include_str!("kernels_wq.cu");
/// The Hopper helpers (mbarriers, TMA, the SW128 descriptor) that [`KERNELS_F8G_CU`] and [`KERNELS_WQ_CU`] share,
/// appended once before them.
pub const KERNELS_SM90_CU: &str = include_str!("kernels_sm90.cu");
/// Session 8: `attn_prefill_fg`, appended to [`KernelSpec::source`] where `attn_prefill_fa` is
/// compiled (the other modules keep kernels.cu's source, and their cached binaries).
pub const KERNELS_FG_CU: &str = include_str!("kernels_fg.cu");
/// The one-row decode megakernel (`TRTFORGE_MK=1`, opt-in; see mk.rs), appended to an
/// sm_90a module by [`KernelSpec::source_mk`].
pub const KERNELS_MK_CU: &str = include_str!("kernels_mk.cu");

/// `TRTFORGE_MK=1` (opt-in): one-row decode steps of eligible engines
/// (`KernelSpec::mk_wanted`) run as one persistent `mk_step` launch on cc 9.0.
pub fn mk_requested() -> bool {
    std::env::var("TRTFORGE_MK").as_deref() == Ok("1")
}

/// Rows of the largest decode GEMV variant; larger batches go through cuBLAS.
pub const GEMV_MAX_T: usize = 8;
/// GEMV variants by maximum rows: a pass of T rows uses the smallest one with `mt >= T`.
pub const GEMV_MTS: [usize; 3] = [1, 4, 8];
/// Threads per GEMV block (`GEMV_WARPS * 32` in kernels.cu).
pub const GEMV_THREADS: u32 = 128;
/// Cached positions per decode-attention block (`ATT_CHUNK`): K and V of the chunk are staged in
/// shared memory as f32, so the chunk shrinks for wide heads.
pub fn att_chunk(head_dim: usize) -> usize {
    if head_dim <= 64 {
        64
    } else {
        32
    }
}
pub const ATT_THREADS: u32 = 128;
/// Query rows per prefill-attention block (`PF_Q`).
pub const PF_Q: usize = 64;
pub const SAMPLE_THREADS: u32 = 1024;
pub const SAMPLE_MAX_K: usize = 1024;

/// How a linear layer's weights are stored on the device (see pack.rs for the byte layouts): the
/// crate's one weight-format type, with the kernel-side names below. int4 is symmetric (stored as
/// q + 8, zero point 8 a constant in the kernels).
pub use crate::quant::WeightFormat;

impl WeightFormat {
    /// Tag used in kernel names and `#define`s.
    pub fn tag(self) -> &'static str {
        match self {
            WeightFormat::F32 => "f32",
            WeightFormat::F16 => "f16",
            WeightFormat::I8 => "i8",
            WeightFormat::I4 { .. } => "i4",
            WeightFormat::F8 => "f8",
        }
    }
    fn macro_name(self) -> &'static str {
        match self {
            WeightFormat::F32 => "WF_F32",
            WeightFormat::F16 => "WF_F16",
            WeightFormat::I8 => "WF_I8",
            WeightFormat::I4 { .. } => "WF_I4",
            WeightFormat::F8 => "WF_F8",
        }
    }
    /// Elements per 16-byte vector: the input dim must be a multiple of this.
    pub fn elems_per_vec(self) -> usize {
        match self {
            WeightFormat::F32 => 4,
            WeightFormat::F16 => 8,
            WeightFormat::I8 | WeightFormat::F8 => 16,
            WeightFormat::I4 { .. } => 32,
        }
    }
    /// Row pairs per warp item (`Fmt<WF>::PPW`).
    pub fn pairs_per_warp(self) -> usize {
        match self {
            WeightFormat::F32 | WeightFormat::F16 => 1,
            WeightFormat::I8 | WeightFormat::I4 { .. } | WeightFormat::F8 => 2,
        }
    }
    /// Bytes of weight data per element, scales and zeros included (for bandwidth reports).
    pub fn bytes_per_elem(self) -> f64 {
        match self {
            WeightFormat::F32 => 4.0,
            WeightFormat::F16 => 2.0,
            WeightFormat::I8 | WeightFormat::F8 => 1.0,
            WeightFormat::I4 { group } => 0.5 + 2.0 / group as f64,
        }
    }
}

/// The fused linear layers of a Llama layer plus the LM head; each has one GEMV kernel shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// RMSNorm prologue, [Wq; Wk; Wv] with RoPE row pairs, epilogue RoPE + KV-cache append.
    Qkv,
    /// Attention output to hidden, residual add.
    O,
    /// RMSNorm prologue, [Wgate; Wup] interleaved, SwiGLU epilogue.
    GateUp,
    /// MLP down projection, residual add.
    Down,
    /// Final RMSNorm prologue, logits out.
    Head,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Qkv, Role::O, Role::GateUp, Role::Down, Role::Head];
    pub fn tag(self) -> &'static str {
        match self {
            Role::Qkv => "qkv",
            Role::O => "o",
            Role::GateUp => "gateup",
            Role::Down => "down",
            Role::Head => "head",
        }
    }
    /// (prologue, epilogue, K macro) in kernels.cu terms.
    fn shape(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Role::Qkv => ("PRO_NORM", "EPI_QKV", "HIDDEN"),
            Role::O => ("PRO_LOAD", "EPI_RESID", "QDIM"),
            Role::GateUp => ("PRO_NORM", "EPI_SWIGLU", "HIDDEN"),
            Role::Down => ("PRO_LOAD", "EPI_RESID", "INTER"),
            Role::Head => ("PRO_NORM", "EPI_STORE", "HIDDEN"),
        }
    }
    /// Input dim of the role's GEMV.
    pub fn k(self, c: &LlamaConfig) -> usize {
        match self {
            Role::Qkv | Role::GateUp | Role::Head => c.hidden_size,
            Role::O => c.q_dim(),
            Role::Down => c.intermediate_size,
        }
    }
}

/// Name of the GEMV kernel for a role, weight format and row bound.
pub fn gemv_name(role: Role, fmt: WeightFormat, mt: usize) -> String {
    format!("gemv_{}_{}_{mt}", fmt.tag(), role.tag())
}

/// Name of the tensor-core GEMV (`tc_body` in kernels.cu) for a role and weight format.
pub fn tc_name(role: Role, fmt: WeightFormat) -> String {
    format!("tc_{}_{}", fmt.tag(), role.tag())
}
/// Name of the register-capped one-row tensor-core GEMV (sessions 7–8, `TRTFORGE_TC_R1`,
/// [`KernelSpec::tcr1_roles`]).
pub fn tcr1_name(role: Role, fmt: WeightFormat) -> String {
    format!("tcr1_{}_{}", fmt.tag(), role.tag())
}
/// Name of the qkv GEMV capped at two 512-thread blocks per SM (session 13, bs1 switches `r2` / `mr2`,
/// [`KernelSpec::tcr2_roles`]): every tile of TinyLlama's qkv (160 tiles) resident at once instead
/// of 80 blocks walking two tiles each.
pub fn tcr2_name(role: Role, fmt: WeightFormat) -> String {
    format!("tcr2_{}_{}", fmt.tag(), role.tag())
}
/// `TRTFORGE_TC_R1`, read once per process ([`KernelSpec::tcr1_roles`]): `0` (no capped instance,
/// the session-7 default), `1` (int8 / fp8 engines: every tensor-core role; fp16: o and down),
/// `o` (the fp16 o projection only, any shape); unset or anything else: `auto`, the session-8
/// default (the fp16 o projection when `q_dim >= 2048`).
fn tcr1_mode() -> &'static str {
    static MODE: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    MODE.get_or_init(|| match std::env::var("TRTFORGE_TC_R1").as_deref() {
        Ok("0") => "0",
        Ok("1") => "1",
        Ok("o") => "o",
        _ => "auto",
    })
}
/// Name of the one-row gate/up GEMV with the down projection fused (session 29, `TRTFORGE_GUD=1`,
/// [`KernelSpec::tcd_formats`]).
pub fn tcd_name(fmt: WeightFormat) -> String {
    format!("tcd_{}_gateup", fmt.tag())
}
/// `TRTFORGE_GUD=1`, read once per process: one-row decode passes run the gate/up GEMV and the down
/// projection as one launch (`tcd_*`, opt-in; session 29 measured it 6.7 % slower at TinyLlama's
/// shape, docs/cuda.md): each thread streams its down rows' weights of each tile into registers
/// (kernels.cu `tc_core` with FD).
pub fn gud_on() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("TRTFORGE_GUD").as_deref() == Ok("1"))
}
/// Dynamic shared memory of a `tcd_*` block (`FdSmem` in kernels.cu): one staged x row of `hidden`
/// (+8) halves rounded up to 128 bytes, then 128 bytes of h values.
pub fn tcd_smem(hidden: usize) -> usize {
    ((hidden + 8) * 2).div_ceil(128) * 128 + 128
}
/// Most h columns a `tcd_*` block takes (its h values live in 128 bytes of shared memory).
pub const TCD_MAX_COLS: usize = 64;
/// Name of the one-row o GEMV whose prologue combines the split decode attention's partial records
/// (`PRO_COMB` in kernels.cu; session 11, bs1 switch `ocomb`; [`KernelSpec::tcc_roles`]).
pub fn tcc_name(role: Role, fmt: WeightFormat) -> String {
    format!("tcc_{}_{}", fmt.tag(), role.tag())
}
/// Name of the multi-tile tensor-core GEMV (`tcm_body`, session 6, opt-in `TRTFORGE_BS1=tcm`).
pub fn tcm_name(role: Role, fmt: WeightFormat) -> String {
    format!("tcm_{}_{}", fmt.tag(), role.tag())
}
/// Threads per tensor-core GEMV block (`TC_WARPS * 32`).
pub const TC_THREADS: u32 = 512;
/// The persistent decode layer (`persist_layer` in kernels.cu, TC_THREADS threads a block).
pub const PERSIST_KERNEL: &str = "persist_layer";

/// Batched tensor-core GEMM (`tcg_*`): decode passes of GEMV_MAX_T < rows <= TCG_MAX_T.
pub fn tcg_name(role: Role, fmt: WeightFormat) -> String {
    format!("tcg_{}_{}", fmt.tag(), role.tag())
}
pub const TCG_MAX_T: usize = 64;
pub const TCG_WARPS: usize = 8;
pub const TCG_THREADS: u32 = 32 * TCG_WARPS as u32;
/// Widest K slice a tcg block stages (64 rows × (1024 + pad) f16 = 135 KB of shared memory).
pub const TCG_MAX_KS: usize = 1024;

/// Launch shape of one tcg GEMM: K slices of `ks` columns (`slices` of them, the last may be
/// partial), `gx` blocks per slice, `smem` bytes of staged activations per block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcgShape {
    pub gx: usize,
    pub slices: usize,
    pub ks: usize,
    pub smem: usize,
}

impl TcgShape {
    /// Partial-sum workspace (f32) of this GEMM: (tiles, slices, 64 rows, 16 outputs).
    pub fn ws_floats(&self, n: usize) -> usize {
        (n / 16) * self.slices * TCG_MAX_T * 16
    }
}

/// Chooses the K split of an (n × k) tcg GEMM for `resident` co-resident blocks: about one block
/// per resident slot with one 16-row tile per warp, slices of `ks_min`..TCG_MAX_KS columns (a
/// multiple of the format's k step), i.e. fewer, wider slices for large n, more for small n.
pub fn tcg_shape(n: usize, k: usize, fmt: WeightFormat, resident: usize, ks_min: usize) -> TcgShape {
    tcg_shape_capped(n, k, fmt, resident, ks_min, TCG_MAX_KS)
}

/// [`tcg_shape`] with slices of at most `ks_max` columns (at least one k step): small caps split
/// even tiny models' K, which the checks use to exercise the split-K reduction.
pub fn tcg_shape_capped(
    n: usize,
    k: usize,
    fmt: WeightFormat,
    resident: usize,
    ks_min: usize,
    ks_max: usize,
) -> TcgShape {
    let step = fmt.tc_stepk();
    let hi = ks_max.clamp(step, TCG_MAX_KS);
    let g = (n / 16).div_ceil(TCG_WARPS).max(1);
    let want = (k * g).div_ceil(resident.max(1));
    let ks = want.clamp(ks_min.min(hi), hi).min(k).next_multiple_of(step).min(hi.next_multiple_of(step));
    let slices = k.div_ceil(ks);
    let gx = g.min(resident.div_ceil(slices)).max(1);
    TcgShape { gx, slices, ks, smem: TCG_MAX_T * (ks + fmt.tcg_pad()) * 2 }
}

/// The session-6 batched decode GEMM (`tcg3_*`, kernels.cu `tcg3_body`): 9..=TCG_MAX_T rows, a
/// per-warp `cp.async` weight ring, split-K reduced through a thread-block cluster.
pub fn tcg3_name(role: Role, fmt: WeightFormat) -> String {
    format!("tcg3_{}_{}", fmt.tag(), role.tag())
}
/// Most K slices of one tcg3 GEMM (the slices of a row group are one portable cluster).
pub const TCG3_MAX_S: usize = 8;
/// Bytes of one weight-row segment per pipeline stage (`TCG3_SB`).
pub const TCG3_SB: usize = 128;
/// Usable shared memory per block on sm_90 (227 KB).
pub const TCG3_SMEM_MAX: usize = 227 * 1024;

/// Launch shape of one tcg3 GEMM: grid (`slices`, `groups`) in clusters of (`slices`, 1, 1), blocks
/// of `rb` threads (one warp per 32 output rows), K slices of `ks` columns staged `xw` wide, `nst`
/// stages of 32 × TCG3_SB bytes per warp, `smem` bytes of dynamic shared memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tcg3Shape {
    pub rb: usize,
    pub groups: usize,
    pub slices: usize,
    pub ks: usize,
    pub xw: usize,
    pub nst: usize,
    pub smem: usize,
}

/// The session-7 batched decode GEMM on wgmma (`tcg4_*`, kernels.cu `tcg4_body`, sm_90a only):
/// opt-in `TRTFORGE_TCG=4`, 9..=TCG_MAX_T rows padded to one of [`TCG4_NTS`] (wgmma's N).
pub fn tcg4_name(role: Role, nt: usize) -> String {
    format!("tcg4_{}_{nt}", role.tag())
}
/// Row paddings (wgmma N) with a `tcg4_*` instance.
pub const TCG4_NTS: [usize; 3] = [16, 32, 64];
/// k per tcg4 pipeline stage (`TCG4_KC`): one 8 KB bulk copy of a 64-row tile.
pub const TCG4_KC: usize = 64;
/// The session-28 FP8 GEMM kernels (kernels_f8g.cu) as (name, padded rows = wgmma N, ring slots):
/// `f8g_<nt>` the default instances; `f8g_64_np` (no per-stage promotion) and `f8g_64_s4` (4 ring
/// slots) measured beside (`TRTFORGE_F8G_VARIANT=np|s4`).
pub const F8G_INSTANCES: [(&str, usize, usize); 5] =
    [("f8g_64", 64, 3), ("f8g_32", 32, 6), ("f8g_16", 16, 8), ("f8g_64_np", 64, 3), ("f8g_64_s4", 64, 4)];
/// Threads of an f8g block: one consumer warpgroup + one producer warp.
pub const F8G_THREADS: u32 = 160;
/// k per f8g pipeline stage (`F8G_KC`): 128 E4M3 bytes of 64 weight rows and of the nt x rows.
pub const F8G_KC: usize = 128;
/// The f8g instance for `rows` rows (9..=64): its name, padded rows (wgmma N) and ring slots.
pub fn f8g_kernel(rows: usize) -> Option<(&'static str, usize, usize)> {
    let name = match rows {
        r if r <= GEMV_MAX_T => return None,
        r if r <= 16 => "f8g_16",
        r if r <= 32 => "f8g_32",
        r if r <= 64 => match std::env::var("TRTFORGE_F8G_VARIANT").as_deref() {
            Ok("np") => "f8g_64_np",
            Ok("s4") => "f8g_64_s4",
            _ => "f8g_64",
        },
        _ => return None,
    };
    F8G_INSTANCES.into_iter().find(|i| i.0 == name)
}
/// Dynamic shared memory of an f8g block: alignment slack, barriers, the received partials (nt · 256)
/// and `nst` ring slots of (64 + nt) · 128 bytes.
pub fn f8g_smem(nt: usize, nst: usize) -> usize {
    2048 + nt * 256 + nst * (64 + nt) * F8G_KC
}
/// K slices (a cluster) of one f8g GEMM of n outputs: the largest of 8 / 4 / 2 / 1 that divides `nt`,
/// leaves each slice at least 4 stages and none empty, and keeps the grid within 360 blocks. Session
/// 28's prototype at 64 rows: qkv / o best at 4 slices, down at 8, gate/up at 2.
pub fn f8g_slices(n: usize, k: usize, nt: usize) -> usize {
    let tiles = n.div_ceil(64);
    let kst = k / F8G_KC;
    // TRTFORGE_F8G_S=1|2|4|8 forces the slices where they divide nt and leave none empty.
    if let Some(f) = std::env::var("TRTFORGE_F8G_S").ok().and_then(|v| v.parse::<usize>().ok()) {
        if [1, 2, 4, 8].contains(&f) && nt % f == 0 && (f - 1) * kst.div_ceil(f) < kst {
            return f;
        }
    }
    [8usize, 4, 2]
        .into_iter()
        .find(|&s| {
            let per = kst.div_ceil(s);
            nt % s == 0 && per >= 4 && (s - 1) * per < kst && tiles * s <= 360
        })
        .unwrap_or(1)
}
/// Whether f8g can run an (n × k) linear: k a whole number of 128-k stages, n even.
pub fn f8g_fits(n: usize, k: usize) -> bool {
    k % F8G_KC == 0 && k > 0 && n % 2 == 0 && n > 0
}
/// Whether fp8 engines build the session-28 FP8 GEMM (`TRTFORGE_FP8_GEMM=1`, the opt-in W8A8 path; on cc 9.0
/// its 9..=64-row passes then run the f8g kernels unless `TRTFORGE_F8G=0`, the rest cuBLASLt's FP8 GEMM).
pub fn f8g_wanted() -> bool {
    std::env::var("TRTFORGE_FP8_GEMM").as_deref() == Ok("1") && std::env::var("TRTFORGE_F8G").as_deref() != Ok("0")
}
/// Whether `TRTFORGE_TCG=4` asks for the wgmma GEMM (the engine builds its kernels for sm_90a then).
pub fn tcg4_requested() -> bool {
    std::env::var("TRTFORGE_TCG").as_deref() == Ok("4")
}
/// The smallest row padding of [`TCG4_NTS`] that holds `rows`.
pub fn tcg4_nt(rows: usize) -> Option<usize> {
    TCG4_NTS.iter().copied().find(|&nt| nt >= rows)
}
/// Threads of a tcg4 block: one consumer warpgroup + one producer warp (session 15).
pub const TCG4_THREADS: u32 = 160;
/// Launch shape of one tcg4 GEMM: grid (`slices`, `tiles`) in clusters of (`slices`, 1, 1),
/// [`TCG4_THREADS`] threads, K slices of `ks`, `nst` ring slots (8 KB of weights + `nt` × 128 bytes of
/// x each), `smem` dynamic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tcg4Shape {
    pub nt: usize,
    pub tiles: usize,
    pub slices: usize,
    pub ks: usize,
    pub nst: usize,
    pub smem: usize,
}
/// Bytes of one tcg4 ring slot: a 64-row × TCG4_KC weight tile and the x stage (`nt` rows × TCG4_KC f16).
pub fn tcg4_slot(nt: usize) -> usize {
    TCG4_KC * 128 + nt * TCG4_KC * 2
}
/// Dynamic shared memory of a tcg4 block: 1 KB of alignment slack (the ring's swizzle atoms are
/// 1024-byte aligned), 1 KB for the mbarriers (full and empty, 16 each), then the ring, which the
/// split-K partial tile (nt × 68 f32) reuses.
pub fn tcg4_smem(nt: usize, nst: usize) -> usize {
    2048 + (nst * tcg4_slot(nt)).max(nt * 68 * 4)
}
/// Whether tcg4 can run an (n × k) linear: k a multiple of 16 (wgmma k), rows padded to 64-row tiles.
pub fn tcg4_fits(n: usize, k: usize) -> bool {
    n > 0 && k > 0 && k % 16 == 0 && n % 2 == 0
}
/// Every tcg4 shape of an (n × k) linear for `nt` padded rows on `sms` SMs, cheapest first: over
/// K slices 1..=TCG3_MAX_S (`ks` a multiple of 64), as many ring slots (2..=16, [`tcg4_slot`] each) as
/// fit when ceil(blocks / sms) blocks share an SM; cost = ceil(blocks / sms) × (ks + 800)
/// (the bytes the busiest SM streams, plus a fixed cost per block) + 896 per extra slice (the merge). The engine takes the
/// first whose clusters are all resident at once. TRTFORGE_TCG4_S / TRTFORGE_TCG4_NST force the
/// slices / the most ring stages.
pub fn tcg4_shapes(n: usize, k: usize, nt: usize, sms: usize) -> Vec<Tcg4Shape> {
    if !tcg4_fits(n, k) || !TCG4_NTS.contains(&nt) {
        return vec![];
    }
    let env = |v: &str| std::env::var(v).ok().and_then(|s| s.parse::<usize>().ok());
    let (force_s, max_nst) = (env("TRTFORGE_TCG4_S"), env("TRTFORGE_TCG4_NST").unwrap_or(16).clamp(2, 16));
    let tiles = n.div_ceil(64);
    let mut all: Vec<(usize, Tcg4Shape)> = vec![];
    for s in 1..=TCG3_MAX_S {
        if force_s.is_some_and(|f| f != s) {
            continue;
        }
        let ks = k.div_ceil(s).next_multiple_of(TCG4_KC);
        let slices = k.div_ceil(ks);
        if slices != s {
            continue;
        }
        let per_sm = (tiles * slices).div_ceil(sms.max(1));
        // 228 KB per SM, 1 KB of it reserved per block.
        let budget = (228 * 1024 / per_sm).saturating_sub(1024).min(TCG3_SMEM_MAX);
        let free = budget.saturating_sub(2048) / tcg4_slot(nt);
        let nst = free.min(max_nst).min(ks.div_ceil(TCG4_KC).max(2));
        let nst = if nst < 2 { 2 } else { nst };
        let sh = Tcg4Shape { nt, tiles, slices, ks, nst, smem: tcg4_smem(nt, nst) };
        if sh.smem > TCG3_SMEM_MAX {
            continue;
        }
        // Fitted to session 16's harness timings of the engine kernel at 64 rows (qkv / o / gate-up /
        // down over S = 1..8): each block a wave costs ~800 k of streaming on top of its ks (pipeline
        // fill + epilogue), each extra slice ~896 k (the cluster merge). Picks S2 for qkv / o / down, S1
        // for gate-up (two waves beat three).
        all.push((per_sm * (ks + 800) + 896 * (slices - 1), sh));
    }
    all.sort_by_key(|(c, _)| *c);
    all.into_iter().map(|(_, sh)| sh).collect()
}

/// The cheapest of [`tcg4_shapes`].
pub fn tcg4_shape(n: usize, k: usize, nt: usize, sms: usize) -> Option<Tcg4Shape> {
    tcg4_shapes(n, k, nt, sms).first().copied()
}

impl WeightFormat {
    /// k per tcg3 pipeline stage (TCG3_SB bytes of a row).
    pub fn tcg3_stage_k(self) -> usize {
        TCG3_SB * 16 / self.tc_chunk()
    }
    /// Elements per 16-byte lane load of the tensor-core kernels (`Tc<WF>::CH`).
    pub fn tc_chunk(self) -> usize {
        self.tc_stepk() / 4
    }
}

/// Whether tcg3 can run an (n × k) linear of `fmt`: tensor-core format, whole 16-row tiles,
/// 16-byte-aligned weight rows and x rows.
pub fn tcg3_fits(n: usize, k: usize, fmt: WeightFormat) -> bool {
    fmt.has_tc() && n % 16 == 0 && k % fmt.tc_chunk() == 0 && k % 8 == 0
}

/// Chooses the tcg3 shape of an (n × k) linear on `sms` SMs: over warps per block (2..8) and K
/// slices (1..=TCG3_MAX_S, `ks` a multiple of 64 and at most `ks_max`), the smallest estimated
/// per-SM time — weight bytes of the busiest SM (blocks dealt evenly over the SMs) plus half of
/// its x staging and cluster-reduction bytes (on-chip / L2 traffic).
pub fn tcg3_shape(n: usize, k: usize, fmt: WeightFormat, sms: usize, ks_max: usize) -> Option<Tcg3Shape> {
    tcg3_shapes(n, k, fmt, sms, ks_max).first().copied()
}

/// Every candidate of [`tcg3_shape`], cheapest first (the engine takes the first whose clusters
/// are all resident at once, by the driver's cluster occupancy).
pub fn tcg3_shapes(n: usize, k: usize, fmt: WeightFormat, sms: usize, ks_max: usize) -> Vec<Tcg3Shape> {
    if !tcg3_fits(n, k, fmt) {
        return vec![];
    }
    let smem_cap: usize = std::env::var("TRTFORGE_TCG3_SMEM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(TCG3_SMEM_MAX)
        .min(TCG3_SMEM_MAX);
    let ske = fmt.tcg3_stage_k();
    let wbytes = TCG3_SB as f64 / ske as f64; // weight bytes per element
    let pad = fmt.tcg_pad();
    let ks_cap = ks_max.max(64) / 64 * 64;
    let mut all: Vec<(f64, Tcg3Shape)> = vec![];
    for wr in [2usize, 3, 4, 5, 6, 8] {
        let rb = 32 * wr;
        let groups = n.div_ceil(rb);
        for s in 1..=TCG3_MAX_S {
            // (the cap narrows slices only as far as TCG3_MAX_S slices still cover k)
            let ks = k.div_ceil(s).next_multiple_of(64).min(ks_cap).max(k.div_ceil(TCG3_MAX_S).next_multiple_of(64));
            let slices = k.div_ceil(ks);
            if slices > TCG3_MAX_S {
                continue;
            }
            let xw = ks.next_multiple_of(ske);
            let xbytes = 64 * (xw + pad) * 2;
            let red = 64 * (rb + 4) * 4;
            let want = ks.div_ceil(ske).clamp(2, 4);
            let Some(nst) = (2..=want).rev().find(|&st| xbytes + wr * st * 32 * TCG3_SB <= smem_cap) else {
                continue;
            };
            let smem = (xbytes + wr * nst * 32 * TCG3_SB).max(red);
            if smem > smem_cap {
                continue;
            }
            let per_sm = (groups * slices).div_ceil(sms.max(1)) as f64;
            let reduce = if slices > 1 { 0.5 * (64 * rb * 4) as f64 } else { 0.0 };
            let cost = per_sm * ((rb * ks) as f64 * wbytes + 0.5 * (64 * ks * 2) as f64 + reduce);
            let sh = Tcg3Shape { rb, groups, slices, ks, xw, nst, smem };
            all.push((cost, sh));
        }
    }
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    all.into_iter().map(|(_, sh)| sh).collect()
}

/// Smallest GEMV variant that holds `t` rows.
pub fn gemv_mt(t: usize) -> Option<usize> {
    GEMV_MTS.iter().copied().find(|&m| m >= t)
}

/// Everything the kernel source is specialized on.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelSpec {
    pub config: LlamaConfig,
    pub max_seq: usize,
    /// f32 activations (GEMM inputs) instead of f16.
    pub act_f32: bool,
    /// f32 KV cache instead of f16.
    pub kv_f32: bool,
    /// Weight format of each role.
    pub formats: Vec<(Role, WeightFormat)>,
    /// GEMV row bounds to instantiate (a subset of GEMV_MTS).
    pub gemv_mts: Vec<usize>,
    /// Paged KV cache (`PAGED_KV`): NHD blocks of 16 positions addressed through a block table
    /// (serve); otherwise one contiguous (slot, kv head, position) cache per batch slot.
    pub paged: bool,
    /// KV cache element type (`KV_Q`): the activation float type (`Fp16`), or 8-bit codes (int8 /
    /// fp8) with static per-head scales, read by the tensor-core attention kernels only.
    pub kv_cache: KvCacheDtype,
    /// An 8-bit cache whose K is rotated before it is rounded (`KV_ROT`, quantization.kv_rotate):
    /// the QKV epilogues park k in `c_kstage` and `kv_rot` rotates, encodes and stores it.
    pub kv_rot: bool,
}

impl WeightFormat {
    /// Whether the tensor-core GEMV reads this format (f16 activations only; fp8 codes are converted
    /// to f16 in registers, `cvt.rn.f16x2.e4m3x2` on sm_89+).
    pub fn has_tc(self) -> bool {
        matches!(self, WeightFormat::F16 | WeightFormat::I8 | WeightFormat::I4 { .. } | WeightFormat::F8)
    }
    /// k per warp step of the tensor-core kernels (`Tc<WF>::STEPK`).
    pub fn tc_stepk(self) -> usize {
        match self {
            WeightFormat::F32 | WeightFormat::F16 => 32,
            WeightFormat::I8 | WeightFormat::F8 => 64,
            WeightFormat::I4 { .. } => 128,
        }
    }
    /// Padding (halves) of a staged x row in the tcg kernels (`Tcg<WF>::PAD`).
    pub fn tcg_pad(self) -> usize {
        match self {
            WeightFormat::F16 | WeightFormat::F32 => 32,
            _ => 8,
        }
    }
}

impl KernelSpec {
    /// Flash-decoding splits needed to cover `max_seq` positions.
    pub fn nsplit(&self) -> usize {
        self.max_seq.div_ceil(att_chunk(self.config.head_dim))
    }

    /// The int4 group size in use (all int4 roles share one).
    pub fn i4_group(&self) -> usize {
        self.formats
            .iter()
            .find_map(|(_, f)| match f {
                WeightFormat::I4 { group } => Some(*group),
                _ => None,
            })
            .unwrap_or(128)
    }

    /// Checks the shapes the kernels rely on; the error says which dimension and why.
    pub fn validate(&self) -> Result<(), String> {
        let c = &self.config;
        if c.head_dim % 2 != 0 || c.head_dim > 256 {
            return Err(format!("head_dim {} must be even and at most 256", c.head_dim));
        }
        let (g, hd, ch) = (c.num_attention_heads / c.num_key_value_heads, c.head_dim, att_chunk(c.head_dim));
        if 4 * (g * hd + ch * (2 * hd + 4) + g * ch + 3 * g + 2 * g * 64) + 4 > 48 * 1024 || hd % 4 != 0 {
            return Err(format!(
                "GQA group {g} × head_dim {hd} does not fit the decode-attention block's shared memory"
            ));
        }
        for &(role, f) in &self.formats {
            let k = role.k(c);
            if k % f.elems_per_vec() != 0 {
                return Err(format!(
                    "{} input dim {k} is not a multiple of {} ({} weights are read 16 bytes at a time)",
                    role.tag(),
                    f.elems_per_vec(),
                    f.tag()
                ));
            }
            if let WeightFormat::I4 { group } = f {
                // One 16-byte vector (32 codes) shares one scale; a partial last group (padded
                // storage, e.g. 576 inputs with group 128) is fine.
                if group == 0 || group % 32 != 0 {
                    return Err(format!(
                        "int4 group size {group} must be a multiple of 32 for the {} weights (input dim {k})",
                        role.tag()
                    ));
                }
            }
        }
        if self.kv_cache.quantized() && (self.kv_f32 || self.act_f32 || !self.attn_tc()) {
            return Err(format!(
                "an {} KV cache needs f16 activations, head_dim % 32 == 0 and at most 8 query heads per KV head \
                 (the tensor-core attention kernels read it); this model has head_dim {hd}, group {g}",
                self.kv_cache.as_str()
            ));
        }
        if c.hidden_size % 8 != 0 || c.intermediate_size % 8 != 0 || c.q_dim() % 8 != 0 {
            return Err("hidden, intermediate and q dims must be multiples of 8".into());
        }
        Ok(())
    }

    /// The `#define` header plus kernels.cu with its GEMV instances filled in.
    pub fn source(&self) -> String {
        let c = &self.config;
        let mut s = String::new();
        let defs: [(&str, String); 12] = [
            ("HIDDEN", c.hidden_size.to_string()),
            ("INTER", c.intermediate_size.to_string()),
            ("QDIM", c.q_dim().to_string()),
            ("KVDIM", c.kv_dim().to_string()),
            ("NH", c.num_attention_heads.to_string()),
            ("NKV", c.num_key_value_heads.to_string()),
            ("HD", c.head_dim.to_string()),
            ("VOCAB", c.vocab_size.to_string()),
            ("EPS", format!("{:e}f", c.rms_norm_eps)),
            ("ATT_CHUNK", att_chunk(c.head_dim).to_string()),
            ("ACT_F32", (self.act_f32 as u8).to_string()),
            ("KV_F32", (self.kv_f32 as u8).to_string()),
        ];
        s.push_str("// generated by trtforge kernels.rs\n");
        for (k, v) in defs {
            let _ = writeln!(s, "#define {k} {v}");
        }
        let _ = writeln!(s, "#define I4_GROUP {}", self.i4_group());
        let _ = writeln!(s, "#define PAGED_KV {}", self.paged as u8);
        let kv_q = match self.kv_cache {
            KvCacheDtype::Fp16 => 0,
            KvCacheDtype::Int8 => 1,
            KvCacheDtype::Fp8 => 2,
        };
        let _ = writeln!(s, "#define KV_Q {kv_q}");
        if self.kv_rot && self.kv_cache.quantized() {
            s.push_str("#define KV_ROT 1\n");
        }
        // Session 7 build switches read from the environment (each its own cached module): the
        // timeline stamps are compiled in only with TRTFORGE_TIMELINE=1 or TRTFORGE_TL_ON=1 (`TL_ON`);
        // TRTFORGE_TC_MINB=N / TRTFORGE_TC_MINB8=N ask ptxas for N resident blocks of the tensor-core
        // GEMVs / of their int8 and fp8 instances over the hidden size (`TC_MINB`, `TC_MINB8`).
        let on = |k: &str| std::env::var(k).as_deref() == Ok("1");
        if on("TRTFORGE_TIMELINE") || on("TRTFORGE_TL_ON") {
            s.push_str("#define TL_ON 1\n");
        }
        // Session 9: TRTFORGE_STAGE_NB=0 builds the per-row RMSNorm staging of the 2–8-row GEMVs
        // (`STAGE_NB 0`, the session-8 code) instead of the batched one.
        if std::env::var("TRTFORGE_STAGE_NB").as_deref() == Ok("0") {
            s.push_str("#define STAGE_NB 0\n");
        }
        // Sessions 19–20: TRTFORGE_TC_UDOWN=N / TRTFORGE_TC_UDOWN16=N build the quantized / f16 down GEMVs with
        // N k-steps of loads in flight a warp (`TC_UDOWN`, `TC_UDOWN16`, kernels.cu `TcU`).
        for (env, def) in [
            ("TRTFORGE_TC_MINB", "TC_MINB"),
            ("TRTFORGE_TC_MINB8", "TC_MINB8"),
            ("TRTFORGE_TC_UDOWN", "TC_UDOWN"),
            ("TRTFORGE_TC_UDOWN16", "TC_UDOWN16"),
        ] {
            if let Some(n) = std::env::var(env).ok().and_then(|v| v.parse::<u32>().ok()).filter(|&n| n > 1) {
                let _ = writeln!(s, "#define {def} {n}");
            }
        }
        // Session 20: `TC_PF2` keeps the next tile's loads in flight in the multi-tile GEMVs; session 21 made it the
        // int4 default (H200, alternating processes: int4 bs1 1,710 / 1,711 -> 1,735 / 1,737, bs8 +1.3 %; int8 and
        // fp8 lost 1.0 / 0.8 % at bs1). TRTFORGE_TC_PF2=1 / =0 forces it on / off ([`Self::pf2`]).
        if self.pf2() {
            s.push_str("#define TC_PF2 1\n");
        }
        // Session 22 (kernels.cu): TRTFORGE_I4_LOP3=0 / TRTFORGE_RS_LATE=0 build the code before `i4_word_pairs` (same
        // pairs bit for bit, six more instructions a word) / before RS_LATE, for A/B runs; TRTFORGE_I4_POST=0 the int4
        // g128 group scales on the weights before the mma (the default before session 23); TRTFORGE_TC_XCLAMP=0 the
        // GEMVs' x loads with their per-lane predicate (before session 23); TRTFORGE_TC_PTOUCH=0 the folded o GEMV without
        // its parameter touch before griddepcontrol.wait (before session 24).
        for (env, val, def) in [
            ("TRTFORGE_I4_LOP3", "0", "I4_LOP3"),
            ("TRTFORGE_RS_LATE", "0", "RS_LATE"),
            ("TRTFORGE_I4_POST", "0", "I4_POST"),
            ("TRTFORGE_TC_XCLAMP", "0", "TC_XCLAMP"),
            ("TRTFORGE_TC_PTOUCH", "0", "TC_PTOUCH"),
            ("TRTFORGE_GUD_EARLY", "1", "FD_EARLY"),
        ] {
            if std::env::var(env).as_deref() == Ok(val) {
                let _ = writeln!(s, "#define {def} {val}");
            }
        }
        if let Some(f) = self.persist_format() {
            let _ = writeln!(s, "#define PERSIST_WF {}", f.macro_name());
        }
        let mut inst = String::new();
        for &(role, f) in &self.formats {
            let (pro, epi, k) = role.shape();
            for &mt in &self.gemv_mts {
                let _ = write!(
                    inst,
                    "GEMV_KERNEL({}, {}, {pro}, {epi}, {k}, {mt}) ",
                    gemv_name(role, f, mt),
                    f.macro_name()
                );
            }
        }
        let mut tc = String::new();
        for (role, f) in self.tc_roles() {
            let (pro, epi, k) = role.shape();
            let _ = write!(tc, "TC_KERNEL({}, {}, {pro}, {epi}, {k}) ", tc_name(role, f), f.macro_name());
        }
        // A tensor-core GEMV instance with its own `__launch_bounds__` minimum of blocks per SM.
        let capped = |tc: &mut String, name: String, minb: &str, f: WeightFormat, pro: &str, epi: &str, k: &str| {
            let _ = write!(
                tc,
                "extern \"C\" __global__ void __launch_bounds__(TC_WARPS * 32, {minb}) {name}(GemvArgs a) {{ tc_body<{}, {pro}, {epi}, {k}>(a); }} ",
                f.macro_name()
            );
        };
        // One-row instances with a register cap (session 7: the `TC_MINB=2` + `TC_MINB8=3` build
        // for int8 / fp8; session 8: the fp16 o / down ones, 123 / 128 registers uncapped = one
        // block per SM). Which ones: `tcr1_roles`.
        for (role, f) in self.tcr1_roles() {
            let (pro, epi, k) = role.shape();
            let minb =
                if matches!(f, WeightFormat::I8 | WeightFormat::F8) && role.k(c) == c.hidden_size { "3" } else { "2" };
            capped(&mut tc, tcr1_name(role, f), minb, f, pro, epi, k);
        }
        // Session 13: the qkv GEMV at two blocks per SM (`tcr2_roles`; launched with `r2` / `mr2`).
        for (role, f) in self.tcr2_roles() {
            let (pro, epi, k) = role.shape();
            capped(&mut tc, tcr2_name(role, f), "2", f, pro, epi, k);
        }
        // The o GEMVs with the attention's combine as their prologue (one row; `tcc_roles`): the
        // register bound of the one-row o launch they replace (tcr1 for fp16, tc_* otherwise).
        for (role, f) in self.tcc_roles() {
            let (_, epi, k) = role.shape();
            let minb = if self.tcr1_roles().contains(&(role, f)) {
                "2".to_string()
            } else {
                format!("TC_MINB_EPI({}, {epi}, {k})", f.macro_name())
            };
            capped(&mut tc, tcc_name(role, f), &minb, f, "PRO_COMB", epi, k);
        }
        for f in self.tcd_formats() {
            let _ = write!(tc, "TCD_KERNEL({}, {}, HIDDEN) ", tcd_name(f), f.macro_name());
        }
        let mut tcm = String::new();
        for (role, f) in self.tc_roles() {
            let (pro, epi, k) = role.shape();
            let _ = write!(tcm, "TCM_KERNEL({}, {}, {pro}, {epi}, {k}) ", tcm_name(role, f), f.macro_name());
        }
        let mut tcg = String::new();
        for (role, f) in self.tc_roles() {
            let (_, epi, k) = role.shape();
            let _ = write!(tcg, "TCG_KERNEL({}, {}, {epi}, {k}) ", tcg_name(role, f), f.macro_name());
        }
        let mut tcg3 = String::new();
        for (role, f) in self.tc_roles() {
            let (_, epi, k) = role.shape();
            let _ = write!(tcg3, "TCG3_KERNEL({}, {}, {epi}, {k}) ", tcg3_name(role, f), f.macro_name());
        }
        s.push_str(
            &KERNELS_CU
                .replace("\nGEMV_INSTANCES\n", &format!("\n{inst}\n"))
                .replace("\nTC_INSTANCES\n", &format!("\n{tc}\n"))
                .replace("\nTCM_INSTANCES\n", &format!("\n{tcm}\n"))
                .replace("\nTCG_INSTANCES\n", &format!("\n{tcg}\n"))
                .replace("\nTCG3_INSTANCES\n", &format!("\n{tcg3}\n")),
        );
        if self.prefill_fa() {
            s.push_str(KERNELS_FG_CU);
        }
        s
    }

    /// [`Self::source`] for the sm_90a module of `TRTFORGE_TCG=4`: `#define TCG4` and the wgmma
    /// GEMM instances (`tcg4_*`, every tensor-core role × [`TCG4_NTS`]).
    pub fn source_tcg4(&self) -> String {
        self.source_sm90a(true, false)
    }

    /// [`Self::source`] for the sm_90a module of the one-row decode megakernel (`mk_step`, mk.rs):
    /// `#define MK` and the layer count, then kernels_mk.cu. The model must pass `mk::MkDims::check`.
    pub fn source_mk(&self) -> String {
        self.append_mk(self.source())
    }

    /// `src` (a module source of this spec) with the megakernel: `#define MK`, the layer count, the chunks' k and
    /// the ring's slots, kernels_mk.cu.
    pub fn append_mk(&self, src: String) -> String {
        let d = super::mk_load::dims_of(&self.config);
        // The chunks' k and the ring's slots (mk.rs `MkDims::ckh` / `cki` / `nslot`; `mk_step`'s shared memory
        // is `MkDims::smem`).
        let mut s = format!(
            "#define MK 1\n#define MK_LAYERS {}\n#define MK_CKH {}\n#define MK_CKI {}\n#define MK_NSLOT {}\n",
            self.config.num_hidden_layers,
            d.ckh(),
            d.cki(),
            d.nslot()
        );
        // TRTFORGE_MK_DEFS=NAME=V,...: diagnostic defines of kernels_mk.cu (e.g. MK_NOWAIT=1: the streaming
        // ceiling). Names other than MK_* or values that are not integers are left out.
        for d in std::env::var("TRTFORGE_MK_DEFS").unwrap_or_default().split(',').filter(|d| !d.is_empty()) {
            let (n, v) = d.split_once('=').unwrap_or((d, "1"));
            if n.starts_with("MK_")
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && v.parse::<i64>().is_ok()
            {
                s.push_str(&format!("#define {n} {v}\n"));
            }
        }
        s.push_str(&src);
        s.push('\n');
        s.push_str(KERNELS_MK_CU);
        s
    }

    /// Whether this engine gets the one-row decode megakernel (`TRTFORGE_MK=1`, opt-in): f16 weights of every role, f16 activations and KV cache (static, not
    /// rotated), and a model `mk::MkDims::check` accepts. The caller adds "on cc 9.0".
    pub fn mk_wanted(&self) -> bool {
        mk_requested()
            && !self.act_f32
            && !self.kv_f32
            && !self.paged
            && !self.kv_rot
            && self.kv_cache == KvCacheDtype::Fp16
            && self.formats.iter().all(|(_, f)| *f == WeightFormat::F16)
            && super::mk_load::dims_of(&self.config).check().is_ok()
    }

    /// [`Self::source`] for an sm_90a module: with `tcg4`, `#define TCG4` and the session-7 wgmma GEMM
    /// instances (`tcg4_*`); with `f8g`, `#define F8G` and the session-28 FP8 GEMM (`f8g_*`).
    pub fn source_sm90a(&self, tcg4: bool, f8g: bool) -> String {
        self.source_sm90a_with(tcg4, f8g, self.wq())
    }

    /// [`Self::source_sm90a`] with the session-37 quantized decode GEMM (`wq_*`, `#define WQ`) where `wq`.
    pub fn source_sm90a_with(&self, tcg4: bool, f8g: bool, wq: bool) -> String {
        let mut s = String::new();
        if tcg4 {
            s.push_str("#define TCG4 1\n");
        }
        if f8g {
            s.push_str("#define F8G 1\n");
        }
        if wq {
            s.push_str("#define WQ 1\n");
        }
        s.push_str(&self.source());
        if tcg4 {
            let mut inst = String::new();
            for (role, _) in self.tc_roles() {
                let (_, epi, k) = role.shape();
                for nt in TCG4_NTS {
                    let _ = write!(inst, "TCG4_KERNEL({}, {epi}, {k}, {nt}) ", tcg4_name(role, nt));
                }
            }
            s.push('\n');
            s.push_str(&KERNELS_TCG4_CU.replace("\nTCG4_INSTANCES\n", &format!("\n{inst}\n")));
        }
        if f8g || wq {
            s.push('\n');
            s.push_str(KERNELS_SM90_CU);
        }
        if f8g {
            s.push('\n');
            s.push_str(KERNELS_F8G_CU);
        }
        if wq {
            s.push('\n');
            s.push_str(KERNELS_WQ_CU);
        }
        s
    }

    /// Whether this engine's int8 / int4 g128 / fp8 linears run the session-37 quantized decode GEMM (`wq_*`,
    /// sm_90a) at 9..=64 rows: f16 activations, such a format, and not `TRTFORGE_WQ=0` ([`super::wq::wanted`]).
    pub fn wq(&self) -> bool {
        !self.act_f32 && self.formats.iter().any(|&(_, f)| super::wq::format_ok(f)) && super::wq::wanted()
    }

    /// Whether this engine's fp8 linears run the session-28 FP8 GEMM (`f8g_*`, sm_90a) at 9..=64
    /// rows: fp8 weights, f16 activations and the FP8 GEMM path on ([`f8g_wanted`]).
    pub fn f8g(&self) -> bool {
        !self.act_f32 && self.formats.iter().any(|&(_, f)| f == WeightFormat::F8) && f8g_wanted()
    }

    /// The kernels [`Self::source_sm90a`] adds with `tcg4` (none without a tensor-core role).
    pub fn tcg4_names(&self) -> Vec<String> {
        let roles = self.tc_roles();
        if roles.is_empty() {
            return vec![];
        }
        let mut v = vec!["tcg4_pack".to_string()];
        for (role, _) in roles {
            v.extend(TCG4_NTS.iter().map(|&nt| tcg4_name(role, nt)));
        }
        v
    }

    /// Whether kernels.cu defines the tensor-core decode attention (`attn_decode_tc`): f16 KV cache,
    /// at most 8 query heads per kv head, head_dim a multiple of 32.
    pub fn attn_tc(&self) -> bool {
        let c = &self.config;
        !self.kv_f32 && c.num_attention_heads / c.num_key_value_heads <= 8 && c.head_dim % 32 == 0
    }

    /// Whether kernels.cu defines `attn_decode_cl` (session 5): where `attn_decode_tc` exists and
    /// head_dim is 32 or a multiple of 64 (its shared-memory swizzles).
    pub fn attn_cl(&self) -> bool {
        let hd = self.config.head_dim;
        self.attn_tc() && (hd == 32 || hd % 64 == 0)
    }

    /// Whether kernels.cu defines `attn_decode_cx` / `attn_decode_cx8` (session 7; 8-bit caches since
    /// session 36): `attn_decode_cl`'s builds.
    pub fn attn_cx(&self) -> bool {
        self.attn_cl()
    }

    /// Whether kernels.cu defines `attn_decode_cx8r` / `attn_decode_cx8rh` (session 58, `ACX_ROPE_OK`:
    /// `attn_decode_cx8` with RoPE and the KV append folded in): head_dim % 64 == 0, no K rotation.
    pub fn attn_cx_rope(&self) -> bool {
        self.attn_cx() && self.config.head_dim % 64 == 0 && !(self.kv_rot && self.kv_cache.quantized())
    }

    /// The weight format of the persistent decode layer (`persist_layer`): defined where the four
    /// layer linears share one tensor-core format and the tensor-core decode attention exists.
    pub fn persist_format(&self) -> Option<WeightFormat> {
        if self.act_f32 || !self.attn_tc() {
            return None;
        }
        let layer: Vec<WeightFormat> = self.formats.iter().filter(|(r, _)| *r != Role::Head).map(|&(_, f)| f).collect();
        let f = *layer.first()?;
        // (fp8 weights: not built into the persistent layer; it is opt-in and was not run with them.)
        (f.has_tc() && f != WeightFormat::F8 && layer.iter().all(|&g| g == f)).then_some(f)
    }

    /// Roles with a tensor-core GEMV instance (f16 activations, f16/int8/int4 weights).
    pub fn tc_roles(&self) -> Vec<(Role, WeightFormat)> {
        if self.act_f32 {
            return vec![];
        }
        self.formats.iter().copied().filter(|(_, f)| f.has_tc()).collect()
    }

    /// Whether the module is built with `TC_PF2` (kernels.cu): the default for engines with int4 weights (session
    /// 21), `TRTFORGE_TC_PF2=1` / `=0` forces it on / off.
    pub fn pf2(&self) -> bool {
        self.pf2_if(std::env::var("TRTFORGE_TC_PF2").ok().as_deref())
    }

    /// [`Self::pf2`] with the switch's value given (for tests).
    pub fn pf2_if(&self, env: Option<&str>) -> bool {
        match env {
            Some("1") => true,
            Some("0") => false,
            _ => self.formats.iter().any(|(_, f)| matches!(f, WeightFormat::I4 { .. })),
        }
    }

    /// The roles with a `tcr1_*` instance (`TRTFORGE_TC_R1`, read once per process, see
    /// `tcr1_mode`): a register-capped copy of the tensor-core GEMV (`__launch_bounds__(512, 3)` for
    /// the int8 / fp8 ones over the hidden size, `(512, 2)` for the rest) that the one-row launches
    /// use; 2–8 rows keep the uncapped `tc_*`. The uncapped fp16 o / down instances get 123 / 128
    /// registers (one 512-thread block per SM); capped at 64, o does not spill and down spills 284 B.
    /// Session 8 (H200, bs1, one call): fp16 o capped 0.862 -> 0.811 ms/step on TinyLlama (the
    /// default from q_dim 2048), 0.458 -> 0.472 on SmolLM2; o + down 0.921; int8 `1` 0.695 -> 0.737.
    pub fn tcr1_roles(&self) -> Vec<(Role, WeightFormat)> {
        self.tcr1_roles_if(tcr1_mode())
    }

    /// [`Self::tcr1_roles`] with the switch given (for tests).
    pub fn tcr1_roles_if(&self, mode: &str) -> Vec<(Role, WeightFormat)> {
        self.tc_roles().into_iter().filter(|&(r, f)| self.tcr1_pick(r, f, mode)).collect()
    }

    /// The roles with a `tcr2_*` instance (session 13): qkv in every tensor-core format, capped at two
    /// 512-thread blocks per SM (`__launch_bounds__(512, 2)`), launched where the bs1 switches `r2`
    /// (one row) / `mr2` (2–8 rows) say so.
    pub fn tcr2_roles(&self) -> Vec<(Role, WeightFormat)> {
        self.tc_roles().into_iter().filter(|&(r, f)| self.has_tcr2(r, f)).collect()
    }

    /// Whether `role` has a `tcr2_*` instance (no allocation: per launch, as [`Self::has_tcr1`]).
    pub fn has_tcr2(&self, role: Role, fmt: WeightFormat) -> bool {
        !self.act_f32 && fmt.has_tc() && role == Role::Qkv && self.formats.contains(&(role, fmt))
    }

    /// The roles with a `tcc_*` instance: the o projection of every tensor-core format, where the split
    /// decode attentions that write partial records exist (`attn_decode_tc`).
    pub fn tcc_roles(&self) -> Vec<(Role, WeightFormat)> {
        if !self.attn_tc() {
            return vec![];
        }
        self.tc_roles().into_iter().filter(|&(r, _)| r == Role::O).collect()
    }

    /// The weight formats with a `tcd_*` instance (`TRTFORGE_GUD=1`): f16 gate/up and down weights,
    /// f16 activations.
    pub fn tcd_formats(&self) -> Vec<WeightFormat> {
        self.tcd_formats_if(gud_on())
    }

    /// [`Self::tcd_formats`] with the switch given (for tests).
    pub fn tcd_formats_if(&self, on: bool) -> Vec<WeightFormat> {
        let f16 = |r: Role| self.formats.contains(&(r, WeightFormat::F16));
        if on && !self.act_f32 && f16(Role::GateUp) && f16(Role::Down) {
            vec![WeightFormat::F16]
        } else {
            vec![]
        }
    }

    /// Whether the one-row launch of `role` uses its `tcr1_*` instance (no allocation: per launch).
    pub fn has_tcr1(&self, role: Role, fmt: WeightFormat) -> bool {
        !self.act_f32 && fmt.has_tc() && self.tcr1_pick(role, fmt, tcr1_mode()) && self.formats.contains(&(role, fmt))
    }

    fn tcr1_pick(&self, role: Role, fmt: WeightFormat, mode: &str) -> bool {
        let f16_o = fmt == WeightFormat::F16 && role == Role::O;
        match mode {
            "0" => false,
            "1" => {
                self.formats.iter().any(|(_, f)| matches!(f, WeightFormat::I8 | WeightFormat::F8))
                    || (fmt == WeightFormat::F16 && matches!(role, Role::O | Role::Down))
            }
            "o" => f16_o,
            // Measured (session 8, H200, bs1): TinyLlama (q_dim 2048) 0.862 -> 0.811 ms/step;
            // SmolLM2 (q_dim 576) 0.458 -> 0.472, so not below 2048.
            _ => f16_o && self.config.q_dim() >= 2048,
        }
    }

    /// Every kernel the source defines (for loading the module and for tests).
    pub fn kernel_names(&self) -> Vec<String> {
        let mut v: Vec<String> = [
            "embed",
            "rmsnorm",
            "gather_rows",
            "rope_append",
            "swiglu",
            "dequant_i8",
            "dequant_i4",
            "dequant_f8",
            "attn_decode",
            "attn_decode_v1",
            "attn_prefill",
            "softmax_causal",
            "argmax_rows",
            "argmax_mb",
            "advance",
            "hist_put",
            "sample_topk_topp",
            "sample_rows",
            "swiglu_h",
            "rope_append_h",
            "quant_e4m3_rows",
            "rmsnorm_q8",
            "swiglu_q8",
            "fp8_rescale",
        ]
        .iter()
        .filter(|s| {
            // The CUDA-core attention kernels read f16/f32 caches only (not compiled for KV_Q).
            !(self.kv_cache.quantized() && matches!(**s, "attn_decode" | "attn_decode_v1" | "attn_prefill"))
        })
        .map(|s| s.to_string())
        .collect();
        if self.kv_rot && self.kv_cache.quantized() {
            v.push("kv_rot".into());
        }
        for &(role, f) in &self.formats {
            for &mt in &self.gemv_mts {
                v.push(gemv_name(role, f, mt));
            }
        }
        for (role, f) in self.tc_roles() {
            v.push(tc_name(role, f));
            v.push(tcm_name(role, f));
            v.push(tcg_name(role, f));
            v.push(tcg3_name(role, f));
        }
        v.extend(self.tcr1_roles().into_iter().map(|(r, f)| tcr1_name(r, f)));
        v.extend(self.tcr2_roles().into_iter().map(|(r, f)| tcr2_name(r, f)));
        v.extend(self.tcc_roles().into_iter().map(|(r, f)| tcc_name(r, f)));
        v.extend(self.tcd_formats().into_iter().map(tcd_name));
        if self.attn_tc() {
            v.push("attn_decode_tc".into());
            v.push("attn_prefill_tc".into());
        }
        if self.attn_cl() {
            v.push("attn_decode_cl".into());
            v.push("attn_decode_cl8".into());
            v.push("attn_decode_cg".into());
        }
        if self.attn_cx() {
            v.push("attn_decode_cx".into());
            v.push("attn_decode_cx8".into());
        }
        if self.attn_cx_rope() {
            v.push("attn_decode_cx8r".into());
            v.push("attn_decode_cx8rh".into());
        }
        if self.persist_format().is_some() {
            v.push(PERSIST_KERNEL.into());
        }
        v.extend(self.prefill_kernels());
        v
    }

    /// Session-6 prefill kernels (kernels.cu, last section), where their guards compile them.
    fn prefill_kernels(&self) -> Vec<String> {
        let c = &self.config;
        let mut v = vec![];
        if c.hidden_size % 128 == 0 {
            v.push("rmsnorm_v".to_string());
        }
        if self.has_rmsnorm_b() {
            v.push("rmsnorm_b".to_string());
        }
        if c.intermediate_size % 4 == 0 {
            v.extend(["swiglu_v".to_string(), "swiglu_hv".to_string()]);
        }
        if c.head_dim % 4 == 0 && !self.kv_cache.quantized() {
            v.extend(["rope_append_p".to_string(), "rope_append_hp".to_string()]);
        }
        if self.prefill_fa() {
            v.extend(["attn_prefill_fa".to_string(), "attn_prefill_fg".to_string()]);
        }
        v
    }

    /// Whether `rmsnorm_b` (one row per block of hidden / 8 threads) is compiled: hidden a multiple
    /// of 256, at most 8192.
    pub fn has_rmsnorm_b(&self) -> bool {
        let h = self.config.hidden_size;
        h % 256 == 0 && h <= 8192
    }

    /// Whether kernels.cu defines `attn_prefill_fa` (session 6): f16 activations and cache, head_dim
    /// 32 or 64, GQA group <= 8.
    pub fn prefill_fa(&self) -> bool {
        self.attn_tc() && !self.act_f32 && !self.kv_cache.quantized() && matches!(self.config.head_dim, 32 | 64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(fmt: WeightFormat) -> KernelSpec {
        KernelSpec {
            config: LlamaConfig::preset("tinyllama-1.1b").unwrap(),
            max_seq: 2048,
            act_f32: false,
            kv_f32: false,
            formats: Role::ALL.iter().map(|&r| (r, fmt)).collect(),
            gemv_mts: GEMV_MTS.to_vec(),
            paged: false,
            kv_cache: KvCacheDtype::Fp16,
            kv_rot: false,
        }
    }

    #[test]
    fn source_has_defines_and_every_instance() {
        let s = spec(WeightFormat::I4 { group: 128 });
        let src = s.source();
        assert!(src.contains("#define HIDDEN 2048"));
        assert!(src.contains("#define ATT_CHUNK 64"));
        assert!(src.contains("#define I4_GROUP 128"));
        // stage_x's batched RMSNorm staging covers every GEMV row count (session 9).
        assert!(src.contains(&format!("#define STAGE_NB_T {GEMV_MAX_T} ")));
        assert!(!src.contains("\nGEMV_INSTANCES\n"), "placeholder must be replaced");
        assert!(!src.contains("\nTC_INSTANCES\n"), "placeholder must be replaced");
        assert!(!src.contains("\nTCM_INSTANCES\n"), "placeholder must be replaced");
        assert!(!src.contains("\nTCG_INSTANCES\n"), "placeholder must be replaced");
        assert!(!src.contains("\nTCG3_INSTANCES\n"), "placeholder must be replaced");
        for n in s.kernel_names() {
            assert!(src.contains(&n), "kernel {n} missing from the source");
        }
        // 23 shared kernels (incl. the FP8 GEMM's rmsnorm_q8 / swiglu_q8 / fp8_rescale and session 7's
        // argmax_mb), the GEMVs, tc + tcg per role, + tcg3 per role, + tcm (session 6) per role, +
        // attn_decode_tc, attn_prefill_tc, attn_decode_cl, attn_decode_cl8, attn_decode_cx, attn_decode_cx8
        // (session 7), persist_layer, + the 6 session-6 prefill kernels (rmsnorm_v, swiglu_v/_hv,
        // rope_append_p/_hp, attn_prefill_fa), + attn_prefill_fg (session 8), + rmsnorm_b (session 9),
        // + tcc_i4_o (session 11: the o GEMV with the attention's combine as its prologue)
        // + tcr2_i4_qkv (session 13: the qkv GEMV at two blocks per SM), + hist_put (session 33)
        // + attn_decode_cx8r / cx8rh (session 58: RoPE and the KV append inside attn_decode_cx8)
        assert_eq!(s.kernel_names().len(), 25 + 5 * GEMV_MTS.len() + 5 + 5 + 5 + 5 + 6 + 1 + 6 + 1 + 1 + 1 + 1 + 2);
        assert!(src.contains("__launch_bounds__(TC_WARPS * 32, 2) tcr2_i4_qkv(GemvArgs a) { tc_body<WF_I4, PRO_NORM, EPI_QKV, HIDDEN>(a); }"));
        assert_eq!(s.tcc_roles(), vec![(Role::O, WeightFormat::I4 { group: 128 })]);
        assert!(src.contains("tcc_i4_o(GemvArgs a) { tc_body<WF_I4, PRO_COMB, EPI_RESID, QDIM>(a); }"));
        assert!(src.contains("#define PERSIST_WF WF_I4"));
        // The persistent layer needs one tensor-core format for the four layer linears.
        let mixed = KernelSpec {
            formats: Role::ALL
                .iter()
                .map(|&r| (r, if r == Role::Down { WeightFormat::I8 } else { WeightFormat::F16 }))
                .collect(),
            ..s.clone()
        };
        assert_eq!(mixed.persist_format(), None);
        assert!(!mixed.source().contains("#define PERSIST_WF"));
        assert!(src.contains("#define PAGED_KV 0"));
        let paged = KernelSpec { paged: true, ..s.clone() };
        assert!(paged.source().contains("#define PAGED_KV 1"));
        assert!(src.contains("#define KV_Q 0"));
        // An 8-bit cache: only the tensor-core attention kernels read it.
        let kv8 = KernelSpec { kv_cache: KvCacheDtype::Int8, paged: true, ..s.clone() };
        assert!(kv8.validate().is_ok());
        assert!(kv8.source().contains("#define KV_Q 1"));
        let names = kv8.kernel_names();
        assert!(names.iter().any(|n| n == "attn_decode_tc") && !names.iter().any(|n| n == "attn_decode"));
        // The session-5 cluster kernel: TinyLlama's head_dim 64 (and every 8-bit build of it).
        assert!(s.attn_cl() && names.iter().any(|n| n == "attn_decode_cl"));
        // (8-bit caches: no CUDA-core attention, no rope_append_p/_hp, no attn_prefill_fa/_fg; attn_decode_cx/cx8
        // read them since session 36)
        assert!(s.attn_cx() && kv8.attn_cx() && names.iter().any(|n| n == "attn_decode_cx8"));
        // Session 58: the fused-RoPE variants at head_dim 64 with f16 and 8-bit caches, not with K rotation.
        assert!(s.attn_cx_rope() && names.iter().any(|n| n == "attn_decode_cx8rh"));
        let rot = KernelSpec { kv_rot: true, ..kv8.clone() };
        assert!(!rot.attn_cx_rope() && !rot.kernel_names().iter().any(|n| n.starts_with("attn_decode_cx8r")));
        assert_eq!(names.len(), s.kernel_names().len() - 7);
        // kernels_fg.cu only in the modules where attn_prefill_fa is compiled (session 8): the others
        // keep kernels.cu's source (and their cached binaries).
        assert!(src.contains("attn_prefill_fg(") && !kv8.source().contains("attn_prefill_fg("));
        assert!(!kv8.source().contains("kernels_fg.cu"));
        let mut bad = KernelSpec { kv_cache: KvCacheDtype::Fp8, ..s };
        bad.config = LlamaConfig::preset("tiny").unwrap(); // head_dim 16
        assert!(bad.validate().unwrap_err().contains("fp8 KV cache needs"));
    }

    #[test]
    fn tcd_instance_only_with_the_switch_and_f16_weights() {
        // Session 29: `tcd_f16_gateup` (gate/up + down in one one-row launch) exists with TRTFORGE_GUD=1 for f16
        // gate/up and down weights with f16 activations, nowhere else; its shared memory holds one x row and 128
        // bytes of h values.
        assert_eq!(spec(WeightFormat::F16).tcd_formats_if(true), vec![WeightFormat::F16]);
        assert!(spec(WeightFormat::F16).tcd_formats_if(false).is_empty());
        assert!(spec(WeightFormat::I8).tcd_formats_if(true).is_empty());
        assert!(KernelSpec { act_f32: true, ..spec(WeightFormat::F16) }.tcd_formats_if(true).is_empty());
        assert_eq!(tcd_name(WeightFormat::F16), "tcd_f16_gateup");
        // TinyLlama: x row 2,056 halves = 4,112 B -> 4,224, then the h values.
        assert_eq!(tcd_smem(2048), 4224 + 128);
        assert!(!spec(WeightFormat::F16).source().contains("TCD_KERNEL(tcd_"));
    }

    #[test]
    fn tcr1_roles_follow_the_weight_formats() {
        // `0`: none. `1`: int8 / fp8 layer weights every tensor-core role (session 7), fp16 o and
        // down (session 8), int4 none. `o`: the fp16 o projection only (the capped down spills).
        // `auto` (the default): the fp16 o projection from q_dim 2048 (TinyLlama), not SmolLM2's 576.
        let o16 = vec![(Role::O, WeightFormat::F16)];
        assert!(spec(WeightFormat::F16).tcr1_roles_if("0").is_empty());
        assert_eq!(spec(WeightFormat::I8).tcr1_roles_if("1").len(), 5);
        assert_eq!(spec(WeightFormat::F8).tcr1_roles_if("1").len(), 5);
        assert!(spec(WeightFormat::I8).tcr1_roles_if("o").is_empty());
        let f16 = spec(WeightFormat::F16).tcr1_roles_if("1");
        assert_eq!(f16, vec![(Role::O, WeightFormat::F16), (Role::Down, WeightFormat::F16)]);
        assert_eq!(spec(WeightFormat::F16).tcr1_roles_if("o"), o16);
        assert!(spec(WeightFormat::I4 { group: 128 }).tcr1_roles_if("1").is_empty());
        assert_eq!(spec(WeightFormat::F16).tcr1_roles_if("auto"), o16);
        assert!(spec(WeightFormat::I8).tcr1_roles_if("auto").is_empty());
        // TC_PF2 (session 21): int4 engines by default, the switch forces it either way.
        let i4 = spec(WeightFormat::I4 { group: 128 });
        assert!(i4.pf2_if(None) && !i4.pf2_if(Some("0")));
        if std::env::var_os("TRTFORGE_TC_PF2").is_none() {
            assert!(i4.source().contains("#define TC_PF2 1") && !spec(WeightFormat::I8).source().contains("TC_PF2 1"));
        }
        assert!(!spec(WeightFormat::I8).pf2_if(None) && !spec(WeightFormat::F16).pf2_if(Some("x")));
        assert!(spec(WeightFormat::F8).pf2_if(Some("1")));
        let smol = KernelSpec { config: LlamaConfig::preset("smollm2-135m").unwrap(), ..spec(WeightFormat::F16) };
        assert!(smol.tcr1_roles_if("auto").is_empty() && smol.tcr1_roles_if("o") == o16);
        assert_eq!(spec(WeightFormat::I8).tcr2_roles(), vec![(Role::Qkv, WeightFormat::I8)]);
        assert!(spec(WeightFormat::I8).has_tcr2(Role::Qkv, WeightFormat::I8));
        assert!(!spec(WeightFormat::I8).has_tcr2(Role::O, WeightFormat::I8));
        assert!(spec(WeightFormat::F16).kernel_names().contains(&tcr2_name(Role::Qkv, WeightFormat::F16)));
    }

    #[test]
    fn tcg_shapes_cover_k_and_fit_shared_memory() {
        let c = LlamaConfig::preset("tinyllama-1.1b").unwrap();
        for fmt in [WeightFormat::F16, WeightFormat::I8, WeightFormat::I4 { group: 128 }] {
            for role in Role::ALL {
                let (n, k) = match role {
                    Role::Qkv => (c.q_dim() + 2 * c.kv_dim(), c.hidden_size),
                    Role::O => (c.hidden_size, c.q_dim()),
                    Role::GateUp => (2 * c.intermediate_size, c.hidden_size),
                    Role::Down => (c.hidden_size, c.intermediate_size),
                    Role::Head => (c.vocab_size, c.hidden_size),
                };
                for resident in [132, 264, 396] {
                    for ks_min in [256, 512] {
                        let sh = tcg_shape(n, k, fmt, resident, ks_min);
                        assert_eq!(sh.ks % fmt.tc_stepk(), 0, "{role:?} {sh:?}");
                        assert!(sh.ks <= TCG_MAX_KS && sh.slices * sh.ks >= k && (sh.slices - 1) * sh.ks < k);
                        assert!(sh.smem <= 227 * 1024 && sh.gx >= 1 && (sh.gx - 1) * TCG_WARPS * 16 < n);
                    }
                }
            }
        }
        // TinyLlama, 2 blocks of 8 warps per SM on 132 SMs: the down projection (k 5632) is split
        // 11 ways, the gate/up projection (n 11264) 3 ways.
        let d = tcg_shape(2048, 5632, WeightFormat::F16, 264, 512);
        assert_eq!((d.ks, d.slices, d.gx), (512, 11, 16));
        let gu = tcg_shape(11264, 2048, WeightFormat::F16, 264, 512);
        assert_eq!((gu.ks, gu.slices, gu.gx), (704, 3, 88));
        // SmolLM2's 576 inputs: a 512-column slice and a last one of 64 (half an int4 step).
        let sm = tcg_shape(1536, 576, WeightFormat::I4 { group: 64 }, 264, 512);
        assert_eq!((sm.ks, sm.slices), (512, 2));
        // A cap of one step splits the tiny model's 176 inputs 6 ways (f16) or 3 ways (int8).
        assert_eq!(tcg_shape_capped(64, 176, WeightFormat::F16, 264, 512, 32).slices, 6);
        assert_eq!(tcg_shape_capped(64, 176, WeightFormat::I8, 264, 512, 32).slices, 3);
    }

    #[test]
    fn tcg4_source_appends_the_wgmma_kernels_only_there() {
        let s = spec(WeightFormat::F16);
        let (base, src) = (s.source(), s.source_tcg4());
        assert!(src.starts_with("#define TCG4 1\n") && src.contains(&base), "the default source, unchanged, inside");
        assert!(!base.contains("tcg4_body"), "the default module does not carry the wgmma kernel");
        assert!(!src.contains("\nTCG4_INSTANCES\n"), "placeholder must be replaced");
        let names = s.tcg4_names();
        assert_eq!(names.len(), 1 + s.tc_roles().len() * TCG4_NTS.len());
        for n in names.iter().filter(|n| *n != "tcg4_pack") {
            assert!(src.contains(&format!("TCG4_KERNEL({n},")), "{n}");
        }
    }

    #[test]
    fn wq_source_holds_every_kernel_only_where_asked() {
        let s = spec(WeightFormat::I4 { group: 128 });
        let (base, src) = (s.source(), s.source_sm90a_with(false, false, true));
        assert!(src.starts_with("#define WQ 1\n") && src.contains(&base), "the default source, unchanged, inside");
        assert!(!base.contains("wq_body") && !s.source_sm90a_with(false, false, false).contains("wq_body"));
        for name in super::super::wq::KERNELS {
            assert!(src.contains(&format!("WQ_KERNEL({name},")), "{name}");
        }
    }

    #[test]
    fn f8g_source_instances_and_shapes() {
        let s = spec(WeightFormat::F8);
        let (base, src) = (s.source(), s.source_sm90a(false, true));
        assert!(src.starts_with("#define F8G 1\n") && src.contains(&base), "the default source, unchanged, inside");
        assert!(!base.contains("f8g_body") && !src.contains("TCG4_KERNEL("), "f8g only where asked, tcg4 not");
        for (name, nt, nst) in F8G_INSTANCES {
            assert!(src.contains(&format!("F8G_KERNEL({name}, {nt}, {nst},")), "{name}");
            // Three blocks of the 64-row default fit an SM's 227 KB; every instance fits one block.
            assert!(f8g_smem(nt, nst) <= 227 * 1024 / if name == "f8g_64" { 3 } else { 1 }, "{name}");
        }
        assert_eq!(f8g_smem(64, 3), 2048 + 64 * 256 + 3 * 128 * 128);
        // Rows: the GEMVs up to GEMV_MAX_T, then the smallest padding; none above 64.
        assert_eq!(f8g_kernel(GEMV_MAX_T), None);
        assert_eq!(f8g_kernel(9).map(|k| k.1), Some(16));
        assert_eq!(f8g_kernel(17).map(|k| k.1), Some(32));
        assert_eq!(f8g_kernel(33).map(|k| k.1), Some(64));
        assert_eq!(f8g_kernel(65), None);
        // TinyLlama's linears at 64 rows: the prototype's best slices (qkv / o 4, gate/up 2, down 8), the head 1.
        let sl: Vec<usize> = [(2560, 2048), (2048, 2048), (11264, 2048), (2048, 5632), (32000, 2048)]
            .map(|(n, k)| f8g_slices(n, k, 64))
            .into();
        assert_eq!(sl, vec![4, 4, 2, 8, 1]);
        for nt in [16, 32, 64] {
            for (n, k) in [(2560, 2048), (2048, 5632), (1536, 576 * 2)] {
                let s = f8g_slices(n, k, nt);
                let (kst, per) = (k / F8G_KC, (k / F8G_KC).div_ceil(s));
                assert!(nt % s == 0 && (s - 1) * per < kst, "{n}x{k} nt {nt}: {s} slices leave one empty");
            }
        }
        assert!(f8g_fits(2048, 5632) && !f8g_fits(576, 576) && !f8g_fits(2048, 0));
    }

    #[test]
    fn tcg4_shapes_cover_k_and_fit_shared_memory() {
        // TinyLlama's linears and the tiny fixture's k = 176 (a partial last stage).
        for (n, k) in [(2560, 2048), (2048, 2048), (11264, 2048), (2048, 5632), (32000, 2048), (128, 176)] {
            for nt in TCG4_NTS {
                let all = tcg4_shapes(n, k, nt, 132);
                assert!(!all.is_empty(), "{n}x{k} nt {nt}");
                for sh in all {
                    assert!(sh.ks % TCG4_KC == 0 && sh.ks * sh.slices >= k && sh.ks * (sh.slices - 1) < k, "{sh:?}");
                    assert!((2..=16).contains(&sh.nst) && sh.smem <= TCG3_SMEM_MAX, "{sh:?}");
                    assert!(sh.smem >= 2048 + sh.nst * tcg4_slot(nt) && sh.tiles * 64 >= n, "{sh:?}");
                }
            }
        }
        assert!(tcg4_shapes(2048, 2040, 64, 132).is_empty(), "k must be a multiple of 16");
    }

    #[test]
    fn tcg3_shapes_fill_the_sms_and_fit_shared_memory() {
        let c = LlamaConfig::preset("tinyllama-1.1b").unwrap();
        for fmt in [WeightFormat::F16, WeightFormat::I8, WeightFormat::F8, WeightFormat::I4 { group: 128 }] {
            for role in Role::ALL {
                let (n, k) = match role {
                    Role::Qkv => (c.q_dim() + 2 * c.kv_dim(), c.hidden_size),
                    Role::O => (c.hidden_size, c.q_dim()),
                    Role::GateUp => (2 * c.intermediate_size, c.hidden_size),
                    Role::Down => (c.hidden_size, c.intermediate_size),
                    Role::Head => (c.vocab_size, c.hidden_size),
                };
                let sh = tcg3_shape(n, k, fmt, 132, usize::MAX).unwrap();
                assert!(sh.smem <= TCG3_SMEM_MAX && sh.ks % 64 == 0 && sh.xw % fmt.tcg3_stage_k() == 0, "{sh:?}");
                assert!(sh.slices * sh.ks >= k && (sh.slices - 1) * sh.ks < k && sh.slices <= TCG3_MAX_S);
                assert!(sh.groups * sh.rb >= n && sh.rb % 32 == 0 && sh.rb <= 256 && (2..=4).contains(&sh.nst));
            }
        }
        // TinyLlama f16 on 132 SMs: one block per SM for every layer matrix.
        let s = |n, k| tcg3_shape(n, k, WeightFormat::F16, 132, usize::MAX).unwrap();
        let (qkv, o, gu, d) = (s(2560, 2048), s(2048, 2048), s(11264, 2048), s(2048, 5632));
        assert_eq!((qkv.rb, qkv.groups, qkv.slices, qkv.ks), (160, 16, 8, 256));
        assert_eq!((o.rb, o.groups, o.slices, o.ks), (128, 16, 8, 256));
        assert_eq!((gu.rb, gu.groups, gu.slices, gu.ks), (256, 44, 3, 704));
        assert_eq!((d.rb, d.groups, d.slices, d.ks), (128, 16, 8, 704));
        // The tiny model's 176 inputs with a 64-column cap: 3 slices (the cluster reduction).
        assert_eq!(tcg3_shape(64, 176, WeightFormat::F16, 132, 64).unwrap().slices, 3);
        assert!(tcg3_shape(64, 176, WeightFormat::I4 { group: 128 }, 132, 64).is_none());
    }

    #[test]
    fn eps_is_a_float_literal() {
        let src = spec(WeightFormat::F16).source();
        assert!(src.contains("#define EPS 1e-5f"), "{}", &src[..400]);
    }

    #[test]
    fn validation_catches_bad_groups() {
        let mut s = spec(WeightFormat::I4 { group: 128 });
        s.config = LlamaConfig::preset("smollm2-135m").unwrap(); // hidden 576 = 4.5 × 128: partial group
        assert!(s.validate().is_ok());
        s.formats = Role::ALL.iter().map(|&r| (r, WeightFormat::I4 { group: 16 })).collect();
        assert!(s.validate().unwrap_err().contains("group size 16"));
        s.formats = Role::ALL.iter().map(|&r| (r, WeightFormat::I4 { group: 64 })).collect();
        assert!(s.validate().is_ok());
        assert!(spec(WeightFormat::F16).validate().is_ok());
    }

    #[test]
    fn gemv_variant_choice() {
        assert_eq!(gemv_mt(1), Some(1));
        assert_eq!(gemv_mt(2), Some(4));
        assert_eq!(gemv_mt(3), Some(4));
        assert_eq!(gemv_mt(8), Some(8));
        assert_eq!(gemv_mt(9), None);
    }

    /// Every attention kernel launch.rs names is registered (`kernel_names`, what the engine loads) by a TinyLlama-shape
    /// build with an f16 or an 8-bit cache (session 58: attn_decode_cx8r was launched but not registered, so the
    /// engine refused it on the GPU: "kernel ... was not compiled for this model").
    #[test]
    fn attention_kernels_launched_are_registered() {
        let f16 = spec(WeightFormat::F16);
        let kv8 = KernelSpec { kv_cache: KvCacheDtype::Int8, ..f16.clone() };
        let mut names = f16.kernel_names();
        names.extend(kv8.kernel_names());
        let launch = include_str!("launch.rs");
        let mut seen = 0;
        for lit in launch.split('"').skip(1).step_by(2) {
            let kernel = lit.starts_with("attn_decode")
                && lit.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if kernel {
                seen += 1;
                assert!(names.iter().any(|n| n == lit), "launch.rs launches {lit}, which no TinyLlama build registers");
            }
        }
        assert!(seen >= 9, "{seen} attention kernel names found in launch.rs");
    }
}
