//! Typed, checked kernel launches: the only `unsafe` of the CUDA forward pass.
//!
//! The forward pass (`cuda/mod.rs`) never sees a raw device pointer. It hands out [`View`]s —
//! a borrowed [`DevBuf`], an element type, an element offset and a length — and calls one safe
//! wrapper per kernel family on [`Kernels`]. Each wrapper
//!
//! 1. checks every view's element type and that it holds at least the elements the kernel will
//!    touch for the given sizes (an [`Error::Gpu`] otherwise, never undefined behaviour),
//! 2. derives the kernel name, grid, block and dynamic shared memory exactly as the raw launch it
//!    replaced did (kernels.cu is unchanged), and
//! 3. launches with the arguments in the kernel's parameter order, behind one `// SAFETY:` note
//!    saying what the kernel reads and writes.
//!
//! What the wrappers cannot see are *values inside* device buffers that steer addressing (token
//! ids, row positions, slots, row indices): those are validated on the host when the pass metadata
//! is built (`backend::check_chunks`, `sched::PassMeta`), and each SAFETY note names the invariant.
//!
//! Adding a kernel: write its `extern "C" __global__` in kernels.cu (and its name in
//! `KernelSpec::kernel_names`), then one method on [`Kernels`] that takes `View`s plus sizes, calls
//! [`need`] for every buffer with the element count the kernel touches, computes grid/block, and
//! makes one `unsafe { self.gpu.launch(..) }` with a `// SAFETY:` note (the `args!` macro builds the
//! argument array in parameter order). Mid-buffer pointers (a layer of the KV cache, a field of the
//! metadata block) are [`View::slice`]s, never `u64` arithmetic. tests/layering.rs keeps `unsafe`,
//! `.ptr()` and `c_void` out of every other file of `cuda/` but gpu.rs.
//!
//! Shapes in the wrappers' docs use the kernels' names: rows = T (tokens of the pass), `act` =
//! `act_t` (f16, f32 in fp32 mode), `kv` = `kv_t`.
use super::gpu::{DevBuf, GemmType, Gpu, LtPtrs, LtScale, LtShape, LtType};
use super::kernels::{
    f8g_fits, f8g_kernel, f8g_slices, f8g_smem, gemv_name, tc_name, tcc_name, tcd_name, tcd_smem, tcg3_fits, tcg3_name,
    tcg4_fits, tcg4_name, tcg4_smem, tcg_name, tcm_name, tcr1_name, tcr2_name, KernelSpec, Role, Tcg3Shape, Tcg4Shape,
    TcgShape, WeightFormat, ATT_THREADS, F8G_KC, F8G_THREADS, GEMV_MAX_T, GEMV_THREADS, PERSIST_KERNEL, PF_Q,
    SAMPLE_THREADS, TCD_MAX_COLS, TCG3_MAX_S, TCG3_SB, TCG3_SMEM_MAX, TCG4_KC, TCG4_THREADS, TCG_MAX_T, TCG_THREADS,
    TC_THREADS,
};
use crate::error::{Error, Result};
use crate::model::LlamaConfig;
use std::ffi::c_void;

/// Element type of a device buffer as a kernel sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    F16,
    I32,
    /// Raw bytes (quantized weight codes in the kernels' packed layout).
    U8,
    /// Device addresses (pointer arrays of the batched GEMMs).
    U64,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F16 => 2,
            DType::U8 => 1,
            DType::U64 => 8,
        }
    }
    fn gemm(self) -> Result<GemmType> {
        match self {
            DType::F32 => Ok(GemmType::F32),
            DType::F16 => Ok(GemmType::F16),
            other => Err(Error::Gpu(format!("cuBLAS GEMM operand of type {other:?} (expected f32 or f16)"))),
        }
    }
}

/// `len` elements of type `dtype` starting `off` elements into `buf`. Borrowing the buffer keeps
/// it alive for as long as the view (and so across the launch that receives it).
#[derive(Clone, Copy)]
pub struct View<'a> {
    buf: &'a DevBuf,
    off: usize,
    len: usize,
    dtype: DType,
}

impl DevBuf {
    /// The whole buffer as elements of `dtype` (a trailing partial element is not included).
    pub fn view(&self, dtype: DType) -> View<'_> {
        View { buf: self, off: 0, len: self.bytes() / dtype.size(), dtype }
    }
    pub fn f32(&self) -> View<'_> {
        self.view(DType::F32)
    }
    pub fn i32(&self) -> View<'_> {
        self.view(DType::I32)
    }
}

impl<'a> View<'a> {
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// Elements `off .. off + len` of this view; an error when they do not lie inside it.
    pub fn slice(&self, off: usize, len: usize) -> Result<View<'a>> {
        if off.checked_add(len).is_none_or(|e| e > self.len) {
            return Err(Error::Gpu(format!(
                "device view: elements {off}..{} lie outside a view of {} {:?} elements",
                off.saturating_add(len),
                self.len,
                self.dtype
            )));
        }
        Ok(View { buf: self.buf, off: self.off + off, len, dtype: self.dtype })
    }
    /// Device address of the first element. Private: only the wrappers below turn views into
    /// kernel arguments.
    fn addr(&self) -> u64 {
        self.buf.ptr() + (self.off * self.dtype.size()) as u64
    }
}

/// Blocks per row of `argmax_mb` (kernels.cu `AM_BLOCKS`).
pub fn am_blocks(vocab: usize) -> u32 {
    vocab.div_ceil(1024).max(1) as u32
}

/// Checks that `v` has element type `dtype` and at least `n` elements.
pub fn need(what: &str, v: &View, dtype: DType, n: usize) -> Result<()> {
    if v.dtype != dtype {
        return Err(Error::Gpu(format!(
            "kernel launch: {what} must hold {dtype:?} elements, the view holds {:?}",
            v.dtype
        )));
    }
    if v.len < n {
        return Err(Error::Gpu(format!(
            "kernel launch: {what} needs {n} {dtype:?} elements, the view holds {} (a buffer sized for fewer rows?)",
            v.len
        )));
    }
    Ok(())
}

/// The per-row metadata of a pass of `rows` rows that a kernel reads: each row's position and cache slot (i32).
fn need_rows(pos: &View, slot: &View, rows: usize) -> Result<()> {
    need("row positions", pos, DType::I32, rows)?;
    need("row slots", slot, DType::I32, rows)
}

fn need_opt(what: &str, v: &Option<View>, dtype: DType, n: usize) -> Result<()> {
    match v {
        Some(v) => need(what, v, dtype, n),
        None => Err(Error::Gpu(format!("kernel launch: {what} is required here"))),
    }
}

fn addr_opt(v: &Option<View>) -> u64 {
    v.as_ref().map_or(0, |v| v.addr())
}

fn i32_of(what: &str, x: usize) -> Result<i32> {
    i32::try_from(x).map_err(|_| Error::Gpu(format!("kernel launch: {what} = {x} does not fit an int")))
}

fn u32_of(what: &str, x: usize) -> Result<u32> {
    u32::try_from(x).map_err(|_| Error::Gpu(format!("kernel launch: {what} = {x} does not fit a grid dimension")))
}

/// Model dimensions the kernels were compiled with (the `#define`s of kernels.cu) and the
/// engine's buffer geometry: what the size checks are computed from.
#[derive(Debug, Clone)]
pub struct Dims {
    pub hidden: usize,
    pub inter: usize,
    pub q_dim: usize,
    pub kv_dim: usize,
    pub n_heads: usize,
    pub n_kv: usize,
    pub head_dim: usize,
    pub vocab: usize,
    /// Cache length (`c_max_seq`).
    pub max_seq: usize,
    /// Flash-decoding split bound (`c_nsplit`).
    pub nsplit: usize,
    /// KV-cache slots per layer (sequences + the dummy slot); in a paged engine the rows of the
    /// block table (`c_tables`), whose entries (block ids < blocks + 1, checked on the host by
    /// `paged::check_step`) address the pool.
    pub slots: usize,
    /// Paged KV cache (`PAGED_KV`): blocks in the pool (plus one dummy block for padded rows).
    pub paged_blocks: Option<usize>,
    /// `act_t`: f32 (fp32 mode) or f16.
    pub act: DType,
    /// `kv_t`: f32 (fp32 mode), f16, or U8 (an 8-bit cache: int8 / fp8 codes, `KV_Q`).
    pub kv: DType,
    /// int4 scale group (0 when no role is int4).
    pub i4_group: usize,
}

impl Dims {
    pub fn new(c: &LlamaConfig, spec: &KernelSpec, slots: usize) -> Dims {
        Dims {
            hidden: c.hidden_size,
            inter: c.intermediate_size,
            q_dim: c.q_dim(),
            kv_dim: c.kv_dim(),
            n_heads: c.num_attention_heads,
            n_kv: c.num_key_value_heads,
            head_dim: c.head_dim,
            vocab: c.vocab_size,
            max_seq: spec.max_seq,
            nsplit: spec.nsplit(),
            slots,
            paged_blocks: None,
            act: if spec.act_f32 { DType::F32 } else { DType::F16 },
            kv: if spec.kv_cache.quantized() {
                DType::U8
            } else if spec.kv_f32 {
                DType::F32
            } else {
                DType::F16
            },
            i4_group: spec.i4_group(),
        }
    }
    /// Elements of one layer's K (or V) cache: (slots, n_kv, max_seq, head_dim), or paged
    /// (blocks + 1, 16, n_kv, head_dim).
    pub fn layer_cache_len(&self) -> usize {
        match self.paged_blocks {
            Some(nb) => (nb + 1) * super::paged::BLOCK * self.n_kv * self.head_dim,
            None => self.slots * self.n_kv * self.max_seq * self.head_dim,
        }
    }
    fn qkv_dim(&self) -> usize {
        self.q_dim + 2 * self.kv_dim
    }
    fn role_k(&self, r: Role) -> usize {
        match r {
            Role::Qkv | Role::GateUp | Role::Head => self.hidden,
            Role::O => self.q_dim,
            Role::Down => self.inter,
        }
    }
}

/// One layer's K and V cache, (slots, n_kv, max_seq, head_dim) each, of the cache dtype.
#[derive(Clone, Copy)]
pub struct LayerCache<'a> {
    pub k: View<'a>,
    pub v: View<'a>,
}

impl<'a> LayerCache<'a> {
    /// Layer `layer` of the whole-model caches (layers, slots, n_kv, max_seq, head_dim).
    pub fn of(d: &Dims, kcache: &'a DevBuf, vcache: &'a DevBuf, layer: usize) -> Result<LayerCache<'a>> {
        let per = d.layer_cache_len();
        Ok(LayerCache { k: kcache.view(d.kv).slice(layer * per, per)?, v: vcache.view(d.kv).slice(layer * per, per)? })
    }
    fn check(&self, d: &Dims) -> Result<()> {
        need("K cache (slots, n_kv, max_seq, head_dim)", &self.k, d.kv, d.layer_cache_len())?;
        need("V cache (slots, n_kv, max_seq, head_dim)", &self.v, d.kv, d.layer_cache_len())
    }
}

/// RoPE tables, (max_seq, head_dim/2) f32 each.
#[derive(Clone, Copy)]
pub struct Rope<'a> {
    pub cos: View<'a>,
    pub sin: View<'a>,
}

impl Rope<'_> {
    fn check(&self, d: &Dims) -> Result<()> {
        need("RoPE cos (max_seq, head_dim/2)", &self.cos, DType::F32, d.max_seq * d.head_dim / 2)?;
        need("RoPE sin (max_seq, head_dim/2)", &self.sin, DType::F32, d.max_seq * d.head_dim / 2)
    }
}

/// The QKV GEMM's output and what every QKV epilogue (`rope_append*`, `attn_decode_rope`) reads and writes besides
/// q: `rows` rows of y (rows, qkv_dim), the layer's cache, each row's position and slot, the RoPE tables.
#[derive(Clone, Copy)]
pub struct QkvRows<'a> {
    pub y: View<'a>,
    pub cache: LayerCache<'a>,
    pub pos: View<'a>,
    pub slot: View<'a>,
    pub rope: Rope<'a>,
    pub rows: usize,
}

impl QkvRows<'_> {
    fn check(&self, d: &Dims) -> Result<()> {
        need("qkv GEMM output", &self.y, self.y.dtype, self.rows * d.qkv_dim())?;
        self.cache.check(d)?;
        need_rows(&self.pos, &self.slot, self.rows)?;
        self.rope.check(d)
    }
}

/// A linear layer's device weights in the kernels' layout: (n, row bytes) codes or floats, and
/// for int8 (n) / int4 (n, ceil(k/group)) f16 scales.
#[derive(Clone, Copy)]
pub struct Weights<'a> {
    pub fmt: WeightFormat,
    pub n: usize,
    pub k: usize,
    pub data: &'a DevBuf,
    pub scales: Option<&'a DevBuf>,
}

impl Weights<'_> {
    fn check(&self, d: &Dims) -> Result<()> {
        let row_bytes = match self.fmt {
            WeightFormat::F32 => self.k * 4,
            WeightFormat::F16 => self.k * 2,
            WeightFormat::I8 | WeightFormat::F8 => self.k,
            WeightFormat::I4 { .. } => self.k / 2,
        };
        need("weights", &self.data.view(DType::U8), DType::U8, self.n * row_bytes)?;
        let scales = match self.fmt {
            WeightFormat::F32 | WeightFormat::F16 => return Ok(()),
            WeightFormat::I8 | WeightFormat::F8 => self.n,
            WeightFormat::I4 { group } => {
                if group != d.i4_group {
                    return Err(Error::Gpu(format!(
                        "int4 weights of group {group}, the kernels were compiled for group {}",
                        d.i4_group
                    )));
                }
                self.n * self.k.div_ceil(group)
            }
        };
        let s = self.scales.map(|b| b.view(DType::F16));
        need_opt("weight scales", &s, DType::F16, scales)
    }
    fn scales_addr(&self) -> u64 {
        self.scales.map_or(0, |b| b.ptr())
    }
}

/// Which decode-attention kernel to run (they share one parameter list but for `nsplit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeAttn {
    /// `attn_decode`: CUDA cores.
    Cuda,
    /// `attn_decode_tc`: tensor cores.
    Tc,
    /// `attn_decode_v1`: one chunk per block, always `nsplit` splits.
    V1,
    /// `attn_decode_cl` (sm_90): tensor cores, a `stages`-deep cp.async K/V pipeline per warp
    /// (the old positions loaded before `griddepcontrol.wait`), the splits of a (kv head, row) as
    /// one thread-block cluster merged through distributed shared memory; `warps` per block: 4
    /// (`attn_decode_cl`) or 8 (`attn_decode_cl8`, opt-in). `cx` (session 7, f16 caches, opt-in):
    /// `attn_decode_cx` / `attn_decode_cx8`, the same with the transposed tile step; their stages are
    /// fixed (4 with 4 warps, 2 with 8; twice that for 8-bit caches: `acx_stages`).
    Cl { stages: usize, warps: usize, cx: bool },
    /// `attn_decode_cg` (sm_90, session 10): `attn_decode_cl`'s 4-warp body (the old positions in a
    /// `stages`-deep ring before `griddepcontrol.wait`) without a cluster: the splits write partial
    /// records and the last block combines them, as `attn_decode_tc` does.
    Cg { stages: usize },
}

/// Largest cluster `attn_decode_cl` takes (`ACL_MAXCS`; above 8 needs non-portable clusters).
pub const ACL_MAXCS: usize = 16;

impl DecodeAttn {
    pub fn name(self) -> &'static str {
        match self {
            DecodeAttn::Cuda => "attn_decode",
            DecodeAttn::Tc => "attn_decode_tc",
            DecodeAttn::V1 => "attn_decode_v1",
            DecodeAttn::Cl { warps: 8, cx: true, .. } => "attn_decode_cx8",
            DecodeAttn::Cl { cx: true, .. } => "attn_decode_cx",
            DecodeAttn::Cl { warps: 8, .. } => "attn_decode_cl8",
            DecodeAttn::Cl { .. } => "attn_decode_cl",
            DecodeAttn::Cg { .. } => "attn_decode_cg",
        }
    }

    /// Whether the kernel reads 8-bit KV caches.
    pub fn reads_kv8(self) -> bool {
        matches!(self, DecodeAttn::Tc | DecodeAttn::Cl { .. } | DecodeAttn::Cg { .. })
    }
}

/// The stages `attn_decode_cx` (4 warps) / `attn_decode_cx8` (8) are compiled with: the same ring bytes
/// for f16 and 8-bit caches (`kv8`: half the bytes a tile, twice the tiles).
pub fn acx_stages(warps: usize, kv8: bool) -> usize {
    let f16 = if warps == 8 { 2 } else { 4 };
    if kv8 {
        2 * f16
    } else {
        f16
    }
}

/// Dynamic shared memory of `attn_decode_cl`: `stages` K and V tiles of 16 positions per warp.
pub fn acl_smem(stages: usize, warps: usize, head_dim: usize, kv: DType) -> usize {
    stages * warps * 2 * 16 * head_dim * kv.size()
}

/// Which GEMV instance: tensor cores (`tc_*`, up to GEMV_MAX_T rows) or CUDA cores for up to
/// `mt` rows (`gemv_*_mt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GemvKind {
    Tc,
    /// `tcr1_*`: the register-capped one-row instances (`KernelSpec::tcr1_roles`, `TRTFORGE_TC_R1`).
    TcR1,
    /// `tcr2_*`: the qkv GEMV capped at two blocks per SM (`KernelSpec::tcr2_roles`, bs1 switches `r2` / `mr2`).
    TcR2,
    /// `tcm_*`: the tensor-core GEMV with several tiles per block in flight (session 6, opt-in).
    Tcm,
    /// `tcc_*` (o only, one row; session 11, bs1 switch `ocomb`): x combined in the prologue from the
    /// split decode attention's partial records ([`GemvIo::comb`]), the attention having been launched
    /// with `fold` (no combine of its own).
    TcC,
    Cuda {
        mt: usize,
    },
}

impl GemvKind {
    pub fn name(self, role: Role, fmt: WeightFormat) -> String {
        match self {
            GemvKind::Tc => tc_name(role, fmt),
            GemvKind::TcR1 => tcr1_name(role, fmt),
            GemvKind::TcR2 => tcr2_name(role, fmt),
            GemvKind::Tcm => tcm_name(role, fmt),
            GemvKind::TcC => tcc_name(role, fmt),
            GemvKind::Cuda { mt } => gemv_name(role, fmt, mt),
        }
    }
}

/// Dynamic shared memory of a tensor-core GEMV: `rows` f16 input rows of `k` (+8 padding) elements.
pub fn tc_smem(rows: usize, k: usize) -> usize {
    rows * (k + 8) * 2
}

/// Dynamic shared memory of the `tcc_*` o GEMV (`stage_comb`): one x row of `q_dim` plus the
/// attention's `ns` fold records (`head_dim` halves, session 12) of each of `n_heads` heads and their
/// weights (one float each).
pub fn tcc_smem(q_dim: usize, n_heads: usize, head_dim: usize, ns: usize) -> usize {
    tc_smem(1, q_dim) + n_heads * ns * (head_dim * 2 + 4)
}

/// Most splits a `tcc_*` launch combines (`stage_comb`: one lane per split).
pub const TCC_NS_MAX: usize = 32;

/// Most copies of the fold records a one-row attention writes (bits 20..23 of its `ATT_FOLD` argument;
/// rows of the partials buffer, which the engine allocates for at least this many).
pub const FOLD_REPS_MAX: usize = 8;

/// Most shared memory a `tcc_*` launch may ask for (of the 227 KB a block may have on sm_90): splits
/// beyond what fits are not folded (`CudaBackend` caps them).
pub const TCC_SMEM_MAX: usize = 200 * 1024;

/// `ATT_FOLD` of kernels.cu: or'ed into attn_decode_tc's splits / attn_decode_cg's stages argument.
const ATT_FOLD: i32 = 0x10000;

/// Inputs and outputs of a fused decode GEMV (`struct GemvArgs` in kernels.cu). Which are used
/// depends on the role: NORM prologue (qkv, gate_up, head) reads `h` and `norm_w`, LOAD (o, down)
/// reads `x`; QKV epilogue writes `out` (= q) and the layer `cache` at (slot, pos) with `rope`,
/// SWIGLU writes `x` (as `out_act`), RESID adds into `out` (= h), STORE writes `out` (= logits).
#[derive(Clone, Copy)]
pub struct GemvIo<'a> {
    /// (T, hidden) f32 residual stream.
    pub h: View<'a>,
    /// (K) f32 RMSNorm weight of NORM roles.
    pub norm_w: Option<View<'a>>,
    /// (T, max(K, inter)) act: LOAD input / SWIGLU output.
    pub x: View<'a>,
    /// f32 output of QKV (q), RESID (h) and STORE (logits); None for gate_up.
    pub out: Option<View<'a>>,
    pub cache: Option<LayerCache<'a>>,
    /// (T) i32 row positions and slots (pass metadata).
    pub pos: View<'a>,
    pub slot: View<'a>,
    pub rope: Rope<'a>,
    /// `tcc_*` only (o, one row): the decode attention's partial records (rows, n_heads, nsplit,
    /// head_dim + 4) f32, how many splits per head it stored and in how many copies (rows of `part`),
    /// and the cluster size of the launch (1: none; 2, 4, 8: heads shared out over the cluster).
    pub comb: Option<(View<'a>, usize, usize, u32)>,
}

/// The kernel parameter block of every GEMV (`struct GemvArgs` in kernels.cu).
#[repr(C)]
#[derive(Clone, Copy)]
struct GemvArgs {
    w: u64,
    scales: u64,
    h: u64,
    norm_w: u64,
    x: u64,
    out: u64,
    out_act: u64,
    kc: u64,
    vc: u64,
    row_pos: u64,
    row_slot: u64,
    rcos: u64,
    rsin: u64,
    t: i32,
    n: i32,
    part: u64,
    nsplit: i32,
    _pad: i32,
}

/// The fused down projection's parameters of a `tcd_*` launch (`struct FdArgs` in kernels.cu).
#[repr(C)]
#[derive(Clone, Copy)]
struct FdArgs {
    wd: u64,
    resid: u64,
    cnt: u64,
    mode: i32,
    _pad: i32,
}

/// `TRTFORGE_GUD_MODE` (diagnostics only, read once; the results are wrong with any bit set): what a
/// `tcd_*` launch leaves out — 1 the adds into h, 2 the down weights' loads, 4 the wait for every
/// block's staged x, 8 the whole down phase.
fn gud_diag_mode() -> i32 {
    static MODE: std::sync::OnceLock<i32> = std::sync::OnceLock::new();
    *MODE.get_or_init(|| std::env::var("TRTFORGE_GUD_MODE").ok().and_then(|v| v.parse().ok()).unwrap_or(0) & 15)
}

impl GemvIo<'_> {
    /// The QKV epilogue's inputs beyond its outputs: the layer's cache, row positions and slots for
    /// `rows` rows, and the RoPE tables (`what` names the kernel in errors).
    fn check_qkv_epilogue(&self, d: &Dims, what: &str, rows: usize) -> Result<()> {
        match &self.cache {
            Some(c) => c.check(d)?,
            None => return Err(Error::Gpu(format!("{what}: the layer's KV cache is required"))),
        }
        need_rows(&self.pos, &self.slot, rows)?;
        self.rope.check(d)
    }

    /// The outputs of a tcg / tcg3 / tcg4 launch's role epilogue over `rows` rows of `n` outputs (QKV: q,
    /// its activation copy if any, the cache + RoPE inputs; SwiGLU: m in `out_act`; O / down / head:
    /// `out`); `kind` names the kernel in errors.
    fn check_role_outputs(
        &self,
        d: &Dims,
        role: Role,
        out_act: &Option<View>,
        kind: &str,
        rows: usize,
        n: usize,
    ) -> Result<()> {
        match role {
            Role::Qkv => {
                if n != d.qkv_dim() {
                    return Err(Error::Gpu(format!("qkv {kind} GEMM: n = {n}, expected {}", d.qkv_dim())));
                }
                need_opt(&format!("{kind} q output"), &self.out, DType::F32, rows * d.q_dim)?;
                if let Some(qa) = out_act {
                    need(&format!("{kind} q (act)"), qa, d.act, rows * d.q_dim)?;
                }
                self.check_qkv_epilogue(d, &format!("qkv {kind} GEMM"), rows)
            }
            Role::GateUp => need_opt(&format!("{kind} swiglu output"), out_act, d.act, rows * n / 2),
            Role::O | Role::Down | Role::Head => need_opt(&format!("{kind} output"), &self.out, DType::F32, rows * n),
        }
    }

    /// The parameter block of a GEMV / tcg launch over `rows` rows of `n` outputs of `w`;
    /// `out_act` is where the SwiGLU epilogue writes.
    fn args(&self, w: &Weights, out_act: u64, rows: usize, n: usize) -> Result<GemvArgs> {
        let (kc, vc) = self.cache.map_or((0, 0), |c| (c.k.addr(), c.v.addr()));
        Ok(GemvArgs {
            w: w.data.ptr(),
            scales: w.scales_addr(),
            h: self.h.addr(),
            norm_w: addr_opt(&self.norm_w),
            x: self.x.addr(),
            out: addr_opt(&self.out),
            out_act,
            kc,
            vc,
            row_pos: self.pos.addr(),
            row_slot: self.slot.addr(),
            rcos: self.rope.cos.addr(),
            rsin: self.rope.sin.addr(),
            t: i32_of("rows", rows)?,
            n: i32_of("n", n)?,
            part: self.comb.map_or(0, |(p, _, _, _)| p.addr()),
            nsplit: self.comb.map_or(Ok(0), |(_, ns, reps, _)| i32_of("splits", ns | reps << 16))?,
            _pad: 0,
        })
    }
}

/// Extra buffers of a batched tensor-core GEMM (`tcg_*`).
#[derive(Clone, Copy)]
pub struct TcgBufs<'a> {
    /// act output: gate/up's m (T, inter); for qkv, q as act (T, q_dim) (prefill passes) or None.
    pub out_act: Option<View<'a>>,
    /// f32 split-K partials, at least `TcgShape::ws_floats(n)`.
    pub ws: View<'a>,
    /// i32 per-tile counters (n / 16), zero between launches (the kernel resets the ones it used).
    pub cnt: View<'a>,
}

/// Per-sequence metadata of a prefill pass: (nseq) i32 arrays.
#[derive(Clone, Copy)]
pub struct SeqMeta<'a> {
    pub slot: View<'a>,
    pub start: View<'a>,
    pub row0: View<'a>,
    pub n: View<'a>,
}

/// Host record of the pointer arrays of the tensor-core prefill attention, built by
/// [`AttnPtrs::upload`] from checked views: per (layer, sequence) six arrays of `n_heads` device
/// addresses [K, q, S, V, P, out]. The addresses point into buffers the engine owns for its whole
/// life (KV cache, `qa`, score/probability buffers, `xact`).
pub struct AttnPtrs {
    layers: usize,
    /// (n, total) of each sequence: the GEMM sizes every address was checked for.
    seqs: Vec<(usize, usize)>,
}

/// Buffers of the tensor-core prefill attention of one pass.
#[derive(Clone, Copy)]
pub struct AttnTcBufs<'a> {
    /// (rows, q_dim) act: RoPE'd q (written by rope_append).
    pub qa: View<'a>,
    /// (n_heads, n, total) f32 scores and act probabilities.
    pub scores: View<'a>,
    pub probs: View<'a>,
    /// (rows, q_dim) act: attention output.
    pub out: View<'a>,
}

impl AttnPtrs {
    /// Builds and uploads into `dst` the pointer arrays for `layers` layers and the pass's
    /// sequences `(slot, start, row0, n)`. Every matrix a pointer names is checked to lie inside
    /// its view for the GEMM sizes `tc_attention` will use.
    pub fn upload(
        k: &Kernels,
        dst: &DevBuf,
        caches: &[LayerCache],
        b: &AttnTcBufs,
        seqs: &[(usize, usize, usize, usize)],
    ) -> Result<AttnPtrs> {
        let d = k.d;
        let (nh, hd, g) = (d.n_heads, d.head_dim, d.n_heads / d.n_kv);
        let nseq = seqs.len();
        if d.kv == DType::U8 {
            return Err(Error::Gpu("the cuBLAS prefill attention cannot read an 8-bit KV cache".into()));
        }
        need("q (act)", &b.qa, d.act, 0)?;
        need("attention scores", &b.scores, DType::F32, 0)?;
        need("attention probabilities", &b.probs, d.act, 0)?;
        need("attention output (act)", &b.out, d.act, 0)?;
        let mut v = vec![0u64; caches.len() * nseq * 6 * nh];
        let mut sizes = Vec::with_capacity(nseq);
        for (l, cache) in caches.iter().enumerate() {
            cache.check(d)?;
            for (si, &(slot, start, row0, n)) in seqs.iter().enumerate() {
                let total = start + n;
                if slot >= d.slots || total > d.max_seq || n == 0 {
                    return Err(Error::Gpu(format!(
                        "tensor-core attention: slot {slot}, {total} tokens outside the cache ({} slots × {})",
                        d.slots, d.max_seq
                    )));
                }
                if l == 0 {
                    sizes.push((n, total));
                }
                let base = (l * nseq + si) * 6 * nh;
                for h in 0..nh {
                    // K, V: (total, hd) rows of this head's cache; q/out: n rows of stride q_dim.
                    let kv_off = (slot * d.n_kv + h / g) * d.max_seq * hd;
                    let q_off = row0 * d.q_dim + h * hd;
                    let q_len = (n - 1) * d.q_dim + hd;
                    let s_off = h * n * total;
                    v[base + h] = cache.k.slice(kv_off, total * hd)?.addr();
                    v[base + nh + h] = b.qa.slice(q_off, q_len)?.addr();
                    v[base + 2 * nh + h] = b.scores.slice(s_off, n * total)?.addr();
                    v[base + 3 * nh + h] = cache.v.slice(kv_off, total * hd)?.addr();
                    v[base + 4 * nh + h] = b.probs.slice(s_off, n * total)?.addr();
                    v[base + 5 * nh + h] = b.out.slice(q_off, q_len)?.addr();
                }
            }
        }
        k.gpu.htod(dst, 0, &v)?;
        Ok(AttnPtrs { layers: caches.len(), seqs: sizes })
    }
}

/// The engine's kernels: model dimensions plus the GPU they run on. Cheap to build per call.
#[derive(Clone, Copy)]
pub struct Kernels<'a> {
    pub gpu: &'a Gpu,
    pub d: &'a Dims,
}

macro_rules! args {
    ($($a:expr),*) => { [$(&mut $a as *mut _ as *mut c_void),*] };
}

/// Whether two device byte ranges (start, length) share a byte.
fn overlap((a, alen): (u64, usize), (b, blen): (u64, usize)) -> bool {
    a < b + blen as u64 && b < a + alen as u64
}

impl<'a> Kernels<'a> {
    pub fn new(gpu: &'a Gpu, d: &'a Dims) -> Self {
        Kernels { gpu, d }
    }

    /// `embed`: h (rows, hidden) f32 = emb[tokens[t]]; emb (vocab, hidden) f32 or f16.
    pub fn embed(&self, tokens: View, emb: View, h: View, rows: usize) -> Result<()> {
        let d = self.d;
        need("tokens", &tokens, DType::I32, rows)?;
        need("embedding table", &emb, emb.dtype, d.vocab * d.hidden)?;
        if !matches!(emb.dtype, DType::F32 | DType::F16) {
            return Err(Error::Gpu("embedding table must be f32 or f16".into()));
        }
        need("h", &h, DType::F32, rows * d.hidden)?;
        let (mut tok, mut e, mut hp) = (tokens.addr(), emb.addr(), h.addr());
        let mut f32e = (emb.dtype == DType::F32) as i32;
        // SAFETY: embed(tokens, emb, emb_f32, h): block t reads tokens[t] (t < rows) and row
        // tokens[t] of emb (ids < vocab, checked by check_chunks on the host), writes row t of h.
        unsafe { self.gpu.launch("embed", (u32_of("rows", rows)?, 1, 1), 256, 0, &mut args!(tok, e, f32e, hp)) }
    }

    /// `rmsnorm`: out (rows, hidden) act = rmsnorm(x (rows, hidden) f32) · w (hidden) f32.
    pub fn rmsnorm(&self, x: View, w: View, out: View, rows: usize) -> Result<()> {
        let d = self.d;
        need("rmsnorm input", &x, DType::F32, rows * d.hidden)?;
        need("rmsnorm weight", &w, DType::F32, d.hidden)?;
        need("rmsnorm output", &out, d.act, rows * d.hidden)?;
        let (mut xp, mut wp, mut op) = (x.addr(), w.addr(), out.addr());
        // SAFETY: rmsnorm(x, w, out): block t reads row t of x and all of w, writes row t of out;
        // all three were checked to hold rows × hidden (w: hidden) elements.
        unsafe { self.gpu.launch("rmsnorm", (u32_of("rows", rows)?, 1, 1), 256, 0, &mut args!(xp, wp, op)) }
    }

    /// `gather_rows`: out (nsel, hidden) f32 = x[idx[i]], x (x_rows, hidden) f32.
    pub fn gather_rows(&self, x: View, x_rows: usize, idx: View, out: View, nsel: usize) -> Result<()> {
        let d = self.d;
        need("gather input", &x, DType::F32, x_rows * d.hidden)?;
        need("gather row indices", &idx, DType::I32, nsel)?;
        need("gather output", &out, DType::F32, nsel * d.hidden)?;
        let (mut xp, mut ip, mut op) = (x.addr(), idx.addr(), out.addr());
        // SAFETY: gather_rows(x, rows, out): block i reads idx[i] (< x_rows: PassMeta builds
        // out_rows from the pass's own rows) and that row of x, writes row i of out.
        unsafe { self.gpu.launch("gather_rows", (u32_of("nsel", nsel)?, 1, 1), 256, 0, &mut args!(xp, ip, op)) }
    }

    /// `rope_append` (GEMM-path QKV epilogue): y (rows, q+2kv) f32 → q (rows, q_dim) f32 and
    /// qa (rows, q_dim) act with RoPE, K (RoPE'd) and V into `cache` at (slot, pos) of each row.
    pub fn rope_append(&self, e: QkvRows, q: View, qa: View) -> Result<()> {
        let d = self.d;
        let QkvRows { y, cache, pos, slot, rope, rows } = e;
        // y f32 (cublasGemmEx / cuBLASLt f32 output) or f16 (cuBLASLt f16 output: rope_append_h).
        let name = if y.dtype == DType::F16 { "rope_append_h" } else { "rope_append" };
        e.check(d)?;
        if !matches!(y.dtype, DType::F32 | DType::F16) || (y.dtype == DType::F16 && d.qkv_dim() % 2 != 0) {
            return Err(Error::Gpu(format!("rope_append: GEMM output of type {:?}", y.dtype)));
        }
        need("q", &q, DType::F32, rows * d.q_dim)?;
        need("q (act)", &qa, d.act, rows * d.q_dim)?;
        let (mut yp, mut qp, mut qap, mut kc, mut vc) = (y.addr(), q.addr(), qa.addr(), cache.k.addr(), cache.v.addr());
        let (mut pp, mut sp, mut cp, mut snp) = (pos.addr(), slot.addr(), rope.cos.addr(), rope.sin.addr());
        // SAFETY: rope_append[_h](y, qout, qa, kc, vc, row_pos, row_slot, rcos, rsin): block t reads
        // row t of y (f32, or f16 as 4-byte pairs: y rows start 4-byte aligned as QKV_DIM is even), pos[t] < max_seq and slot[t] < slots (host-built metadata), writes row t of q/qa
        // and one (slot, head, pos) row of this layer's K/V caches (checked to be whole layers).
        unsafe {
            self.gpu.launch(
                name,
                (u32_of("rows", rows)?, 1, 1),
                256,
                0,
                &mut args!(yp, qp, qap, kc, vc, pp, sp, cp, snp),
            )
        }
    }

    /// `kv_rot` (K rotation, `KV_ROT`): block (t, h) = row t, kv head h, 1 + q-heads-per-kv-head warps:
    /// rotates row t's k parked in `c_kstage` by its layer's R, encodes it into (slot[t], h, pos[t])
    /// of this layer's cache, and rotates row t's q heads of group h in `q` in place (and `qa`).
    pub fn kv_rot(&self, q: View, qa: View, cache: LayerCache, pos: View, slot: View, rows: usize) -> Result<()> {
        let d = self.d;
        if d.kv != DType::U8 || d.head_dim % 32 != 0 || d.n_heads / d.n_kv > 31 {
            return Err(Error::Gpu(
                "kv_rot: needs an 8-bit cache, head_dim % 32 == 0 and ≤ 31 q heads per kv head".into(),
            ));
        }
        need("q", &q, DType::F32, rows * d.q_dim)?;
        need("q (act)", &qa, d.act, rows * d.q_dim)?;
        cache.check(d)?;
        need_rows(&pos, &slot, rows)?;
        let (mut qp, mut qap, mut kc, mut pp, mut sp) = (q.addr(), qa.addr(), cache.k.addr(), pos.addr(), slot.addr());
        // SAFETY: kv_rot(qout, qa, kc, row_pos, row_slot): block t reads row t of c_kstage (sized
        // max_tokens rows at init; rows <= max_tokens as q's check shows), rewrites row t of q / qa
        // (checked above), and writes one (slot, head, pos) row of this layer's K cache per kv head
        // (pos[t] < max_seq and slot[t] < slots: host-built metadata; the view is a whole layer).
        unsafe {
            self.gpu.launch(
                "kv_rot",
                (u32_of("rows", rows)?, d.n_kv as u32, 1),
                (32 * (1 + d.n_heads / d.n_kv)) as u32,
                0,
                &mut args!(qp, qap, kc, pp, sp),
            )
        }
    }

    /// `swiglu`: m (rows, inter) act = silu(gate) · up of y (rows, 2·inter) f32 (interleaved);
    /// `swiglu_h` where y is f16 (cuBLASLt f16 output).
    pub fn swiglu(&self, y: View, m: View, rows: usize) -> Result<()> {
        let d = self.d;
        let name = match y.dtype {
            DType::F32 => "swiglu",
            DType::F16 => "swiglu_h",
            t => return Err(Error::Gpu(format!("swiglu: GEMM output of type {t:?}"))),
        };
        need("gate/up GEMM output", &y, y.dtype, rows * 2 * d.inter)?;
        need("swiglu output", &m, d.act, rows * d.inter)?;
        let blocks = ((rows * d.inter).div_ceil(256) as u32).min(self.gpu.sms * 16);
        let (mut yp, mut mp, mut ri) = (y.addr(), m.addr(), i32_of("rows", rows)?);
        // SAFETY: swiglu[_h](y, m, T): a grid-stride loop over rows × inter elements of m, reading
        // two elements of y each (swiglu_h: 16-byte loads of 4 pairs where inter % 4 == 0; y starts
        // 16-byte aligned, views of whole buffers); both checked above.
        unsafe { self.gpu.launch(name, (blocks, 1, 1), 256, 0, &mut args!(yp, mp, ri)) }
    }

    /// Checks the FP8 outputs of a GEMM-input quantization: q (rows, k) E4M3 codes (2-byte
    /// aligned), s (rows) f32 row scales, the optional static scale (one f32); its address or 0.
    fn fp8_out(&self, q: &View, s: &View, sstat: Option<&View>, rows: usize, k: usize) -> Result<u64> {
        if self.gpu.cc < (8, 9) || k % 2 != 0 {
            return Err(Error::Gpu(format!("FP8 quantization needs sm_89+ and an even k ({k})")));
        }
        need("fp8 codes", q, DType::U8, rows * k)?;
        need("fp8 row scales", s, DType::F32, rows)?;
        if q.addr() % 2 != 0 {
            return Err(Error::Gpu("fp8 codes must start 2-byte aligned".into()));
        }
        match sstat {
            Some(v) => {
                need("fp8 static input scale", v, DType::F32, 1)?;
                Ok(v.addr())
            }
            None => Ok(0),
        }
    }

    /// `quant_e4m3_rows`: FP8 E4M3 quantization of a GEMM input, s[t] = the static scale `sstat`
    /// (an engine dir's per-tensor input scale) or else max|x[t, :]| / 448 (dynamic per row),
    /// q[t, :] = e4m3(x[t, :] / s[t]); x (rows, k) act, q (rows, k) bytes, s (rows) f32; k even.
    pub fn quant_e4m3_rows(&self, x: View, q: View, s: View, sstat: Option<View>, rows: usize, k: usize) -> Result<()> {
        let mut stp = self.fp8_out(&q, &s, sstat.as_ref(), rows, k)?;
        need("fp8 input", &x, self.d.act, rows * k)?;
        if x.addr() % 16 != 0 || q.addr() % 8 != 0 {
            return Err(Error::Gpu("quant_e4m3_rows: x must start 16-byte aligned, q 8-byte aligned".into()));
        }
        let (mut xp, mut qp, mut sp, mut ki) = (x.addr(), q.addr(), s.addr(), i32_of("k", k)?);
        // SAFETY: quant_e4m3_rows(x, q, s, sstat, K): block t < rows reads row t of x (k act; 16-byte
        // vectors where k is the model's q_dim, aligned: checked) and sstat[0] if non-null, writes k / 2
        // 2-byte words of row t of q (8-byte vectors then; aligned, checked) and s[t]; all checked above.
        unsafe {
            self.gpu.launch("quant_e4m3_rows", (u32_of("rows", rows)?, 1, 1), 256, 0, &mut args!(xp, qp, sp, stp, ki))
        }
    }

    /// `fp8_rescale`: dst (rows, n) f32 = y · xs[t] · ws[n] (+ dst where `acc`): the FP8 GEMM's
    /// per-row input and per-channel weight scales where cuBLASLt ran it unscaled into y.
    #[allow(clippy::too_many_arguments)]
    pub fn fp8_rescale(&self, y: View, xs: View, ws: View, dst: View, acc: bool, rows: usize, n: usize) -> Result<()> {
        need("fp8 GEMM output", &y, DType::F32, rows * n)?;
        need("fp8 row scales", &xs, DType::F32, rows)?;
        need("fp8 weight scales", &ws, DType::F32, n)?;
        need("fp8 rescaled output", &dst, DType::F32, rows * n)?;
        let total = i32_of("rows × n", rows * n)?;
        let blocks = ((rows * n).div_ceil(256) as u32).min(self.gpu.sms * 8);
        let (mut yp, mut xp, mut wp, mut dp) = (y.addr(), xs.addr(), ws.addr(), dst.addr());
        let (mut ni, mut ti, mut ai) = (i32_of("n", n)?, total, acc as i32);
        // SAFETY: fp8_rescale(y, xs, ws, dst, N, total, acc): a grid-stride loop over rows × n
        // elements of y and dst (element-wise, so y may be dst), reading xs[t < rows] and
        // ws[j < n]; all checked above.
        unsafe { self.gpu.launch("fp8_rescale", (blocks, 1, 1), 256, 0, &mut args!(yp, xp, wp, dp, ni, ti, ai)) }
    }

    /// `rmsnorm_q8`: RMSNorm of x (rows, hidden) f32 with w (hidden) f32 straight into E4M3 codes
    /// q (rows, hidden) and row scales s (rows) f32 (static `sstat` or dynamic per row).
    pub fn rmsnorm_q8(&self, x: View, w: View, q: View, s: View, sstat: Option<View>, rows: usize) -> Result<()> {
        let d = self.d;
        let mut stp = self.fp8_out(&q, &s, sstat.as_ref(), rows, d.hidden)?;
        need("rmsnorm input", &x, DType::F32, rows * d.hidden)?;
        need("rmsnorm weight", &w, DType::F32, d.hidden)?;
        let (mut xp, mut wp, mut qp, mut sp) = (x.addr(), w.addr(), q.addr(), s.addr());
        // SAFETY: rmsnorm_q8(x, w, q, s, sstat): block t reads row t of x, all of w and sstat[0]
        // if non-null, writes hidden / 2 2-byte words of row t of q and s[t]; all checked above.
        unsafe { self.gpu.launch("rmsnorm_q8", (u32_of("rows", rows)?, 1, 1), 256, 0, &mut args!(xp, wp, qp, sp, stp)) }
    }

    /// `swiglu_q8`: silu(gate) · up of y (rows, 2·inter) f32 (interleaved) straight into E4M3
    /// codes q (rows, inter) and row scales s (rows) f32 (static `sstat` or dynamic per row).
    pub fn swiglu_q8(&self, y: View, q: View, s: View, sstat: Option<View>, rows: usize) -> Result<()> {
        let d = self.d;
        let mut stp = self.fp8_out(&q, &s, sstat.as_ref(), rows, d.inter)?;
        need("gate/up GEMM output", &y, DType::F32, rows * 2 * d.inter)?;
        if y.addr() % 16 != 0 || d.inter % 2 != 0 {
            return Err(Error::Gpu(
                "swiglu_q8: y must start 16-byte aligned, inter even (16-byte (g, u, g, u) loads)".into(),
            ));
        }
        let (mut yp, mut qp, mut sp) = (y.addr(), q.addr(), s.addr());
        // SAFETY: swiglu_q8(y, q, s, sstat): block t reads row t of y as inter / 2 16-byte (gate, up,
        // gate, up) vectors (aligned, inter even: checked) and sstat[0] if non-null, writes inter / 2 2-byte words of row
        // t of q and s[t]; all checked above.
        unsafe { self.gpu.launch("swiglu_q8", (u32_of("rows", rows)?, 1, 1), 256, 0, &mut args!(yp, qp, sp, stp)) }
    }

    /// `dequant_i8` / `dequant_i4` / `dequant_f8`: out (n, k) f16 = the f16 dequantization of quantized `w`.
    pub fn dequant(&self, w: &Weights, out: View) -> Result<()> {
        let name = match w.fmt {
            WeightFormat::I8 => "dequant_i8",
            WeightFormat::I4 { .. } => "dequant_i4",
            WeightFormat::F8 => "dequant_f8",
            other => return Err(Error::Gpu(format!("dequant: {} weights are not quantized", other.tag()))),
        };
        w.check(self.d)?;
        need("dequantized weights", &out, DType::F16, w.n * w.k)?;
        let blocks = ((w.n * w.k / 8).div_ceil(256) as u32).min(self.gpu.sms * 16);
        let (mut wp, mut sp, mut dq) = (w.data.ptr(), w.scales_addr(), out.addr());
        let (mut n, mut k) = (i32_of("n", w.n)?, i32_of("k", w.k)?);
        // SAFETY: dequant_*(q, s, out, N, K): a grid-stride loop over the n × k codes (i8, f8: n × k
        // bytes; i4: n × k / 8 words) and their scales, writing n × k f16; all checked by
        // Weights::check and above.
        unsafe { self.gpu.launch(name, (blocks, 1, 1), 256, 0, &mut args!(wp, sp, dq, n, k)) }
    }

    /// A fused decode GEMV of `role` over `rows` (<= GEMV_MAX_T) rows: `kind` picks the instance,
    /// `grid` the number of blocks (the kernels loop over output pairs/tiles, any grid >= 1 works).
    pub fn gemv(&self, kind: GemvKind, role: Role, grid: u32, w: &Weights, io: &GemvIo, rows: usize) -> Result<()> {
        let d = self.d;
        let k = d.role_k(role);
        let (n, act) = (w.n, d.act.size());
        let mut cluster = 1u32;
        let (threads, smem) = match kind {
            GemvKind::Tc | GemvKind::Tcm | GemvKind::TcR1 | GemvKind::TcR2
                if rows <= GEMV_MAX_T && d.act == DType::F16 && n % 16 == 0 =>
            {
                (TC_THREADS, tc_smem(rows, k))
            }
            GemvKind::TcC if rows == 1 && role == Role::O && d.act == DType::F16 && n % 16 == 0 => {
                let (part, ns, reps, cs) = io
                    .comb
                    .ok_or_else(|| Error::Gpu("o GEMV tcc: the attention's partial records are required".into()))?;
                if !matches!(cs, 1 | 2 | 4 | 8 | 16) || grid % cs != 0 || (cs > 1 && self.gpu.cc.0 < 9) {
                    return Err(Error::Gpu(format!("o GEMV tcc: clusters of {cs} for {grid} blocks")));
                }
                cluster = cs;
                if !(1..=FOLD_REPS_MAX).contains(&reps) {
                    return Err(Error::Gpu(format!("o GEMV tcc: {reps} copies of the records (1..={FOLD_REPS_MAX})")));
                }
                if ns == 0 || ns > d.nsplit || ns > TCC_NS_MAX {
                    return Err(Error::Gpu(format!("o GEMV tcc: {ns} splits (1..={} and <= {TCC_NS_MAX})", d.nsplit)));
                }
                need("attention partials", &part, DType::F32, reps * d.n_heads * d.nsplit * (d.head_dim + 4))?;
                let smem = tcc_smem(d.q_dim, d.n_heads, d.head_dim, ns);
                if smem > TCC_SMEM_MAX {
                    return Err(Error::Gpu(format!("o GEMV tcc: {ns} splits need {smem} B of shared memory")));
                }
                (TC_THREADS, smem)
            }
            GemvKind::Cuda { mt } if rows <= mt && mt <= GEMV_MAX_T => (GEMV_THREADS, rows * k * act),
            _ => return Err(Error::Gpu(format!("{} GEMV: {kind:?} cannot run {rows} rows of n = {n}", role.tag()))),
        };
        if rows == 0 || grid == 0 {
            return Err(Error::Gpu(format!("{} GEMV: empty launch ({rows} rows, {grid} blocks)", role.tag())));
        }
        let name = kind.name(role, w.fmt);
        let mut a = self.gemv_args(role, w, io, rows)?;
        // SAFETY: GemvArgs mirrors `struct GemvArgs` of kernels.cu field for field; the instance
        // `name` was compiled for this role (prologue/epilogue) and weight format, and every field
        // the role's prologue reads and epilogue writes was checked by gemv_args for `rows` rows of
        // k inputs / n outputs; QKV rows write the cache at (row_slot, row_pos) < (slots, max_seq);
        // tcc_* copies nsplit records of each head of row 0 from `part` (checked above for c_nsplit
        // >= nsplit records per head) into its `smem` bytes behind x (allowed at engine creation);
        // in clusters (grid a multiple of `cluster`, sm_90) each block stores its heads' x values into
        // the same offsets of every block of its cluster, between two cluster barriers.
        unsafe {
            if cluster > 1 {
                self.gpu.launch_cluster(&name, (grid, 1, 1), threads, smem as u32, cluster, &mut args!(a))
            } else {
                self.gpu.launch(&name, (grid, 1, 1), threads, smem as u32, &mut args!(a))
            }
        }
    }

    /// `tcd_*` (session 29, `TRTFORGE_GUD=1`): the one-row gate/up GEMV and the down projection in one
    /// launch of `grid` blocks (block b takes gate/up tiles b·tiles/grid .. (b+1)·tiles/grid, i.e. the
    /// h columns of the down weights it streams from `tiles8`, `down`'s copy in column tiles
    /// (`pack::cols8_tiles`)), adding the down sums into `io.h` (red.global.add).
    /// `cnt`: two i32 counters, zero between launches (the kernel leaves them zero). Every block waits
    /// for every other block's staged x before its first add, so `grid` must be resident at once: the
    /// caller sizes it by the occupancy of `tcd_smem(hidden)` bytes of shared memory (allowed at
    /// engine creation).
    #[allow(clippy::too_many_arguments)]
    pub fn gemv_fd(&self, grid: u32, gu: &Weights, down: &Weights, tiles8: View, io: &GemvIo, cnt: View) -> Result<()> {
        let d = self.d;
        if gu.fmt != WeightFormat::F16 || down.fmt != WeightFormat::F16 || d.act != DType::F16 {
            return Err(Error::Gpu(format!(
                "gate/up + down GEMV: f16 weights and activations only (got {} / {})",
                gu.fmt.tag(),
                down.fmt.tag()
            )));
        }
        if down.n != d.hidden || down.k != d.inter || gu.n != 2 * d.inter || gu.n % 16 != 0 {
            return Err(Error::Gpu(format!(
                "gate/up + down GEMV: shapes {} x {} / {} x {} (want {} x {} / {} x {})",
                gu.n,
                gu.k,
                down.n,
                down.k,
                2 * d.inter,
                d.hidden,
                d.hidden,
                d.inter
            )));
        }
        down.check(d)?;
        let tiles = gu.n / 16;
        if grid == 0 || grid as usize > tiles {
            return Err(Error::Gpu(format!("gate/up + down GEMV: {grid} blocks for {tiles} tiles")));
        }
        let cols = 8 * tiles.div_ceil(grid as usize);
        if cols > TCD_MAX_COLS {
            return Err(Error::Gpu(format!("gate/up + down GEMV: {cols} h columns a block (at most {TCD_MAX_COLS})")));
        }
        let smem = tcd_smem(d.hidden);
        need("gate/up + down counters", &cnt, DType::I32, 2)?;
        // (inter a multiple of 8: gate/up's 2 · inter rows are whole 16-row tiles, checked above.)
        need("down weights in column tiles (inter / 8, hidden, 8)", &tiles8, DType::F16, d.hidden * d.inter)?;
        let mut a = self.gemv_args(Role::GateUp, gu, io, 1)?;
        let mut f = FdArgs { wd: tiles8.addr(), resid: io.h.addr(), cnt: cnt.addr(), mode: gud_diag_mode(), _pad: 0 };
        let name = tcd_name(gu.fmt);
        // SAFETY: GemvArgs / FdArgs mirror kernels.cu's structs field for field; `name` is the f16
        // gate/up instance with FD; gemv_args checked every buffer gate/up's NORM prologue reads for one
        // row (h, norm_w); the fused epilogue writes only shared memory (one x row and <= TCD_MAX_COLS h
        // values in its tcd_smem bytes, allowed at engine creation) and adds hidden floats
        // into h (one row, checked there); each block reads hidden x 8·(t1 - t0) f16 of the down weights in
        // column tiles (tiles8: hidden x inter f16, checked); cnt holds two i32 (checked) that the launch
        // returns to zero.
        unsafe { self.gpu.launch(&name, (grid, 1, 1), TC_THREADS, smem as u32, &mut args!(a, f)) }
    }

    /// The checked parameter block of a GEMV of `role` over `rows` rows: the weights' shape, every
    /// buffer the role's prologue reads and its epilogue writes.
    fn gemv_args(&self, role: Role, w: &Weights, io: &GemvIo, rows: usize) -> Result<GemvArgs> {
        let d = self.d;
        let (k, n) = (d.role_k(role), w.n);
        if w.k != k {
            return Err(Error::Gpu(format!("{} GEMV: weights have k = {}, the kernel expects {k}", role.tag(), w.k)));
        }
        w.check(d)?;
        match role {
            Role::Qkv | Role::GateUp | Role::Head => {
                need("GEMV h", &io.h, DType::F32, rows * k)?;
                need_opt("GEMV norm weight", &io.norm_w, DType::F32, k)?;
            }
            Role::O | Role::Down => need("GEMV x", &io.x, d.act, rows * k)?,
        }
        match role {
            Role::Qkv => {
                if n != d.qkv_dim() {
                    return Err(Error::Gpu(format!("qkv GEMV: n = {n}, expected {}", d.qkv_dim())));
                }
                need_opt("GEMV q output", &io.out, DType::F32, rows * d.q_dim)?;
                io.check_qkv_epilogue(d, "qkv GEMV", rows)?;
            }
            Role::GateUp => need("GEMV swiglu output", &io.x, d.act, rows * n / 2)?,
            Role::O | Role::Down | Role::Head => need_opt("GEMV output", &io.out, DType::F32, rows * n)?,
        }
        io.args(w, io.x.addr(), rows, n)
    }

    /// Flash-decoding attention of `rows` sequences (one new token each) over `cache`:
    /// out (rows, q_dim) act from q (rows, q_dim) f32, `ns` splits per (sequence, kv head).
    /// `fold` > 0 (one row, `attn_decode_tc` / `attn_decode_cg`): no combine and no `out`; every
    /// split stores its fold record in `fold` copies (rows 0..fold of `part`) for the `tcc_*` o GEMV.
    #[allow(clippy::too_many_arguments)]
    pub fn attn_decode(
        &self,
        kind: DecodeAttn,
        ns: usize,
        q: View,
        cache: LayerCache,
        out: View,
        part: View,
        counters: View,
        pos: View,
        slot: View,
        rows: usize,
        fold: usize,
    ) -> Result<()> {
        let d = self.d;
        if fold > FOLD_REPS_MAX || (fold > 0 && rows != 1) {
            return Err(Error::Gpu(format!("{}: {fold} copies of fold records for {rows} rows", kind.name())));
        }
        if fold > 0 && !matches!(kind, DecodeAttn::Tc | DecodeAttn::Cg { .. }) {
            return Err(Error::Gpu(format!(
                "{}: no folded combine (attn_decode_tc / attn_decode_cg only)",
                kind.name()
            )));
        }
        if d.kv == DType::U8 && !kind.reads_kv8() {
            return Err(Error::Gpu(format!(
                "{}: an 8-bit KV cache is read by attn_decode_tc / attn_decode_cl only",
                kind.name()
            )));
        }
        if let DecodeAttn::Cl { stages, warps, .. } = kind {
            self.check_cl(kind, ns)?;
            let threads = (warps * 32) as u32;
            need("q", &q, DType::F32, rows * d.q_dim)?;
            cache.check(d)?;
            need("attention output", &out, d.act, rows * d.q_dim)?;
            need_rows(&pos, &slot, rows)?;
            let grid = (ns as u32, u32_of("n_kv", d.n_kv)?, u32_of("rows", rows)?);
            let smem = u32_of("attention shared memory", acl_smem(stages, warps, d.head_dim, d.kv))?;
            let (mut qp, mut kc, mut vc, mut op) = (q.addr(), cache.k.addr(), cache.v.addr(), out.addr());
            let (mut rp, mut sp, mut st) = (pos.addr(), slot.addr(), stages as i32);
            // SAFETY: attn_decode_cl(q, kc, vc, out, row_pos, row_slot, stg): block (split, kvh, b)
            // reads q row b and cache rows (slot[b], kvh, 0..=pos[b]) (< slots, max_seq by the host
            // metadata; rows past pos[b] of a 16-row tile are zero-filled, not read), stages at most
            // `stg` tiles per warp in its `smem` bytes of dynamic shared memory (allowed at engine
            // creation), and the blocks of one cluster (grid.x == cluster == ns) write out row b.
            // Sizes checked above for `rows` sequences.
            return unsafe {
                self.launch_ns(kind.name(), grid, threads, smem, ns, &mut args!(qp, kc, vc, op, rp, sp, st))
            };
        }
        // The split kernels: partial records per (row, head, split) and a last-block combine.
        let (ns, smem, last) = match kind {
            DecodeAttn::V1 => (d.nsplit, 0, d.nsplit),
            DecodeAttn::Cg { stages } => {
                if !(2..=8).contains(&stages) {
                    return Err(Error::Gpu(format!("attn_decode_cg: {stages} stages (2..=8)")));
                }
                (ns, acl_smem(stages, 4, d.head_dim, d.kv), stages)
            }
            _ => (ns, 0, ns),
        };
        if ns == 0 || ns > d.nsplit || (kind != DecodeAttn::V1 && ns > 64) {
            return Err(Error::Gpu(format!("{}: {ns} splits (1..={} and <= 64)", kind.name(), d.nsplit)));
        }
        need("q", &q, DType::F32, rows * d.q_dim)?;
        cache.check(d)?;
        need("attention output", &out, d.act, rows * d.q_dim)?;
        need("attention partials", &part, DType::F32, rows.max(fold) * d.n_heads * d.nsplit * (d.head_dim + 4))?;
        need("attention counters", &counters, DType::I32, rows * d.n_kv)?;
        need_rows(&pos, &slot, rows)?;
        let grid = (ns as u32, u32_of("n_kv", d.n_kv)?, u32_of("rows", rows)?);
        let smem = u32_of("attention shared memory", smem)?;
        let (mut qp, mut kc, mut vc, mut op) = (q.addr(), cache.k.addr(), cache.v.addr(), out.addr());
        let (mut pp, mut cp, mut rp, mut sp) = (part.addr(), counters.addr(), pos.addr(), slot.addr());
        // fold: no combine in the attention (every split stores a record; the tcc_* o GEMV combines).
        let mut last = last as i32 | if fold > 0 { ATT_FOLD | (fold as i32) << 20 } else { 0 };
        // SAFETY: attn_decode*(q, kc, vc, out, part, counters, row_pos, row_slot[, nsplit | stg]): block
        // (split, kvh, b) reads q row b, cache rows (slot[b], kvh, 0..=pos[b]) (< slots, max_seq by
        // the host metadata; attn_decode_cg zero-fills the rows past pos[b] of a 16-row tile instead of
        // reading them and stages at most `stg` tiles per warp in its `smem` bytes of dynamic shared
        // memory, allowed at engine creation), writes its (b, head, split) partial records (stride
        // c_nsplit >= ns), bumps counters[b·n_kv + kvh] (zero between calls; the last block resets it)
        // and the last block writes out row b (with fold: every split of grid.x < c_nsplit writes its
        // fold record into rows 0..fold of `part` and nothing else). Sizes checked above for
        // max(rows, fold) rows of partials.
        unsafe {
            if kind == DecodeAttn::V1 {
                self.gpu.launch(kind.name(), grid, ATT_THREADS, 0, &mut args!(qp, kc, vc, op, pp, cp, rp, sp))
            } else {
                self.gpu.launch(kind.name(), grid, ATT_THREADS, smem, &mut args!(qp, kc, vc, op, pp, cp, rp, sp, last))
            }
        }
    }

    /// `attn_decode_cx8r` / `attn_decode_cx8rh` (session 58): `attn_decode_cx8` (`kind`, one block or a cluster of
    /// `ns` per (kv head, row)) with the QKV GEMM's epilogue folded in — it reads q from the GEMM output `y` (rows,
    /// qkv_dim) f32 / f16 in RoPE's pair order, rotates it, and writes each row's new K / V (RoPE'd k) into the
    /// cache itself, so no `rope_append` runs before it. head_dim % 64 == 0, an f16 or 8-bit cache without K
    /// rotation (the module has no such kernel otherwise).
    pub fn attn_decode_rope(&self, kind: DecodeAttn, ns: usize, e: QkvRows, out: View) -> Result<()> {
        let d = self.d;
        let QkvRows { y, cache, pos, slot, rope, rows } = e;
        let DecodeAttn::Cl { stages, warps: 8, cx: true } = kind else {
            return Err(Error::Gpu(format!("attn_decode_rope: {} is not attn_decode_cx8", kind.name())));
        };
        self.check_cl(kind, ns)?;
        let name = match y.dtype {
            DType::F32 => "attn_decode_cx8r",
            DType::F16 => "attn_decode_cx8rh",
            t => return Err(Error::Gpu(format!("attn_decode_cx8r: QKV GEMM output of type {t:?}"))),
        };
        if d.head_dim % 64 != 0 || d.qkv_dim() % 4 != 0 || y.addr() % 16 != 0 {
            return Err(Error::Gpu(format!("{name}: needs head_dim % 64 == 0 and 16-byte aligned rows of y")));
        }
        e.check(d)?;
        need("attention output", &out, d.act, rows * d.q_dim)?;
        let grid = (ns as u32, u32_of("n_kv", d.n_kv)?, u32_of("rows", rows)?);
        let smem = u32_of("attention shared memory", acl_smem(stages, 8, d.head_dim, d.kv))?;
        let (mut yp, mut kc, mut vc, mut op) = (y.addr(), cache.k.addr(), cache.v.addr(), out.addr());
        let (mut rp, mut sp, mut cp, mut snp, mut st) =
            (pos.addr(), slot.addr(), rope.cos.addr(), rope.sin.addr(), stages as i32);
        let mut a = args!(yp, kc, vc, op, rp, sp, cp, snp, st);
        // SAFETY: attn_decode_cx8r[h](y, kc, vc, out, row_pos, row_slot, rcos, rsin, stg): block (split, kvh, b)
        // reads row b of y (f32 / f16, 16-byte aligned rows: qkv_dim % 4 == 0), cos / sin row pos[b], cache rows
        // (slot[b], kvh, 0..pos[b]) (< slots, max_seq by the host metadata), writes the cache row (slot[b], kvh,
        // pos[b]) (the split holding it only) and, as attn_decode_cx8, stages at most `stg` tiles a warp in its
        // `smem` bytes (allowed at engine creation) and writes out row b (one cluster of ns blocks per row and kv
        // head). Sizes checked above for `rows` sequences.
        unsafe { self.launch_ns(name, grid, 2 * ATT_THREADS, smem, ns, &mut a) }
    }

    /// The launch shape of `attn_decode_cl` / `cx` (`kind` Cl; `attn_decode` and `attn_decode_rope`): a cluster of
    /// 1..=ACL_MAXCS blocks, 2..=8 stages, 4 or 8 warps, and for cx an f16 or 8-bit cache with `acx_stages`' stages.
    fn check_cl(&self, kind: DecodeAttn, ns: usize) -> Result<()> {
        let d = self.d;
        let DecodeAttn::Cl { stages, warps, cx } = kind else {
            return Err(Error::Gpu(format!("{}: not attn_decode_cl / cx", kind.name())));
        };
        if ns == 0 || ns > ACL_MAXCS || !(2..=8).contains(&stages) || !(warps == 4 || warps == 8) {
            return Err(Error::Gpu(format!(
                "attn_decode_cl: cluster of {ns} (1..={ACL_MAXCS}), {stages} stages (2..=8), {warps} warps (4 or 8)"
            )));
        }
        let kv8 = d.kv == DType::U8;
        if cx && (!(kv8 || d.kv == DType::F16) || stages != acx_stages(warps, kv8)) {
            return Err(Error::Gpu(format!(
                "{}: an f16 or 8-bit KV cache, {} stages (got {:?}, {stages})",
                kind.name(),
                acx_stages(warps, kv8),
                d.kv
            )));
        }
        Ok(())
    }

    /// `name` over `grid`: one block a grid cell where `ns` is 1, else clusters of `ns` blocks along x (the decode
    /// attention's splits of one (kv head, row)).
    ///
    /// # Safety
    /// As [`Gpu::launch`] / [`Gpu::launch_cluster`]: `args` are `name`'s parameters, and what the kernel reads and
    /// writes for this grid lies in live device buffers.
    unsafe fn launch_ns(
        &self,
        name: &str,
        grid: (u32, u32, u32),
        threads: u32,
        smem: u32,
        ns: usize,
        args: &mut [*mut c_void],
    ) -> Result<()> {
        if ns == 1 {
            self.gpu.launch(name, grid, threads, smem, args)
        } else {
            self.gpu.launch_cluster(name, grid, threads, smem, ns as u32, args)
        }
    }

    /// What both prefill attention kernels read and write: q (rows, q_dim) f32, the layer's cache,
    /// out (rows, q_dim) act and `nseq` pieces of metadata.
    fn check_prefill_io(
        &self,
        q: &View,
        cache: &LayerCache,
        out: &View,
        seqs: &SeqMeta,
        nseq: usize,
        rows: usize,
    ) -> Result<()> {
        let d = self.d;
        need("q", q, DType::F32, rows * d.q_dim)?;
        cache.check(d)?;
        need("attention output", out, d.act, rows * d.q_dim)?;
        for (what, v) in
            [("seq slots", &seqs.slot), ("seq starts", &seqs.start), ("seq row0", &seqs.row0), ("seq n", &seqs.n)]
        {
            need(what, v, DType::I32, nseq)?;
        }
        Ok(())
    }

    /// Tiled causal attention of a prefill pass: `nseq` pieces (longest `max_n` rows) whose rows
    /// lie in 0..rows of q (rows, q_dim) f32 / out (rows, q_dim) act.
    #[allow(clippy::too_many_arguments)]
    pub fn attn_prefill(
        &self,
        q: View,
        cache: LayerCache,
        out: View,
        seqs: SeqMeta,
        nseq: usize,
        max_n: usize,
        rows: usize,
    ) -> Result<()> {
        let d = self.d;
        if d.kv == DType::U8 {
            return Err(Error::Gpu("attn_prefill: an 8-bit KV cache is read by attn_prefill_tc only".into()));
        }
        self.check_prefill_io(&q, &cache, &out, &seqs, nseq, rows)?;
        let grid = (u32_of("blocks", max_n.div_ceil(PF_Q))?, u32_of("n_heads", d.n_heads)?, u32_of("nseq", nseq)?);
        let (mut qp, mut kc, mut vc, mut op) = (q.addr(), cache.k.addr(), cache.v.addr(), out.addr());
        let (mut s0, mut s1, mut s2, mut s3) = (seqs.slot.addr(), seqs.start.addr(), seqs.row0.addr(), seqs.n.addr());
        // SAFETY: attn_prefill(q, kc, vc, out, seq_slot, seq_start, seq_row0, seq_n): block
        // (tile, head, b) reads piece b's metadata, its rows row0..row0+n (< rows) of q and cache
        // rows 0..start+n (<= max_seq) of its slot, writes the same rows of out. PassMeta builds
        // the pieces from the pass's rows; the buffers were checked for `rows` rows.
        unsafe { self.gpu.launch("attn_prefill", grid, PF_Q as u32, 0, &mut args!(qp, kc, vc, op, s0, s1, s2, s3)) }
    }

    /// Flash-attention prefill on tensor cores (`attn_prefill_tc`): the same inputs and outputs as
    /// [`attn_prefill`](Self::attn_prefill), 64 queries of one head per block of 4 warps.
    #[allow(clippy::too_many_arguments)]
    pub fn attn_prefill_tc(
        &self,
        q: View,
        cache: LayerCache,
        out: View,
        seqs: SeqMeta,
        nseq: usize,
        max_n: usize,
        rows: usize,
    ) -> Result<()> {
        let d = self.d;
        if !matches!(d.kv, DType::F16 | DType::U8)
            || d.act != DType::F16
            || d.head_dim % 32 != 0
            || d.n_heads / d.n_kv > 8
        {
            return Err(Error::Gpu(
                "attn_prefill_tc needs an f16 or 8-bit cache, head_dim % 32 == 0, GQA group <= 8".into(),
            ));
        }
        self.check_prefill_io(&q, &cache, &out, &seqs, nseq, rows)?;
        let grid = (u32_of("blocks", max_n.div_ceil(64))?, u32_of("n_heads", d.n_heads)?, u32_of("nseq", nseq)?);
        let (mut qp, mut kc, mut vc, mut op) = (q.addr(), cache.k.addr(), cache.v.addr(), out.addr());
        let (mut s0, mut s1, mut s2, mut s3) = (seqs.slot.addr(), seqs.start.addr(), seqs.row0.addr(), seqs.n.addr());
        // SAFETY: attn_prefill_tc(q, kc, vc, out, seq_slot, seq_start, seq_row0, seq_n): block
        // (tile, head, b) reads piece b's metadata, its rows row0..row0+n (< rows) of q and cache
        // rows 0..start+n (<= max_seq) of its slot, writes the same rows of out (as attn_prefill).
        unsafe { self.gpu.launch("attn_prefill_tc", grid, 128, 0, &mut args!(qp, kc, vc, op, s0, s1, s2, s3)) }
    }

    /// Batched tensor-core GEMM of `role` for GEMV_MAX_T < rows <= TCG_MAX_T (`tcg_*`): x (rows, k)
    /// act (`io.x`, already normalized) times the weights, split over K as `sh` says, with the
    /// role's epilogue (QKV: q + cache; SWIGLU: m into `b.out_act`; RESID: `io.out` += ; STORE).
    pub fn tcg(&self, role: Role, sh: TcgShape, w: &Weights, io: &GemvIo, b: &TcgBufs, rows: usize) -> Result<()> {
        let d = self.d;
        let k = d.role_k(role);
        let n = w.n;
        if w.k != k || d.act != DType::F16 || n % 16 != 0 || !w.fmt.has_tc() {
            return Err(Error::Gpu(format!("{} tcg GEMM: k = {} (kernel {k}), n = {n}, {:?}", role.tag(), w.k, w.fmt)));
        }
        if rows <= GEMV_MAX_T || rows > TCG_MAX_T || sh.slices == 0 || sh.gx == 0 || sh.ks * sh.slices < k {
            return Err(Error::Gpu(format!("{} tcg GEMM: {rows} rows, shape {sh:?}", role.tag())));
        }
        w.check(d)?;
        need("tcg x", &io.x, d.act, rows * k)?;
        need("tcg partials", &b.ws, DType::F32, sh.ws_floats(n))?;
        need("tcg counters", &b.cnt, DType::I32, n / 16)?;
        io.check_role_outputs(d, role, &b.out_act, "tcg", rows, n)?;
        let mut a = io.args(w, addr_opt(&b.out_act), rows, n)?;
        let (mut ws, mut cnt, mut ks) = (b.ws.addr(), b.cnt.addr(), i32_of("ks", sh.ks)?);
        let grid = (u32_of("tcg blocks", sh.gx)?, u32_of("tcg slices", sh.slices)?, 1);
        // SAFETY: tcg_*(GemvArgs, ws, cnt, ks): GemvArgs mirrors the CUDA struct; block (bx, s)
        // stages x rows < rows, columns [s·ks, s·ks + ks) ∩ [0, k) (checked: rows × k act), reads
        // the weights (checked for n × k), writes partials ws[(tile·slices + s)·1024 ..] (checked:
        // ws_floats(n)) and counters cnt[tile < n/16]; the last warp of a tile writes the role's
        // outputs checked above for `rows` rows; QKV rows write the cache at (row_slot, row_pos).
        // The dynamic shared memory `sh.smem` (64 × (ks + pad) f16) was allowed at engine load.
        unsafe {
            self.gpu.launch(&tcg_name(role, w.fmt), grid, TCG_THREADS, sh.smem as u32, &mut args!(a, ws, cnt, ks))
        }
    }

    /// The session-6 batched decode GEMM of `role` (`tcg3_*`) for GEMV_MAX_T < rows <= TCG_MAX_T:
    /// as [`Kernels::tcg`] (same inputs, outputs and epilogues), split over K as `sh` says and
    /// reduced inside a cluster of `sh.slices` blocks (no workspace). `out_act`: gate/up's m, or q
    /// as act for prefill passes of the cuBLAS attention.
    pub fn tcg3(
        &self,
        role: Role,
        sh: Tcg3Shape,
        w: &Weights,
        io: &GemvIo,
        out_act: Option<View>,
        rows: usize,
    ) -> Result<()> {
        let d = self.d;
        let k = d.role_k(role);
        let n = w.n;
        if w.k != k || d.act != DType::F16 || !tcg3_fits(n, k, w.fmt) {
            return Err(Error::Gpu(format!(
                "{} tcg3 GEMM: k = {} (kernel {k}), n = {n}, {:?}",
                role.tag(),
                w.k,
                w.fmt
            )));
        }
        let ske = w.fmt.tcg3_stage_k();
        let bad = rows <= GEMV_MAX_T
            || rows > TCG_MAX_T
            || sh.slices == 0
            || sh.slices > TCG3_MAX_S
            || sh.ks * sh.slices < k
            || sh.ks % 64 != 0
            || sh.xw < sh.ks
            || sh.xw % ske != 0
            || sh.rb % 32 != 0
            || !(64..=256).contains(&sh.rb)
            || sh.groups * sh.rb < n
            || !(1..=8).contains(&sh.nst)
            || sh.smem > TCG3_SMEM_MAX
            || sh.smem < 64 * (sh.xw + w.fmt.tcg_pad()) * 2 + sh.rb / 32 * sh.nst * 32 * TCG3_SB
            || sh.smem < 64 * (sh.rb + 4) * 4;
        if bad {
            return Err(Error::Gpu(format!("{} tcg3 GEMM: {rows} rows, shape {sh:?}", role.tag())));
        }
        w.check(d)?;
        need("tcg3 x", &io.x, d.act, rows * k)?;
        io.check_role_outputs(d, role, &out_act, "tcg3", rows, n)?;
        let mut a = io.args(w, addr_opt(&out_act), rows, n)?;
        let (mut ks, mut xw, mut nst) = (i32_of("ks", sh.ks)?, i32_of("xw", sh.xw)?, i32_of("nst", sh.nst)?);
        let grid = (u32_of("tcg3 slices", sh.slices)?, u32_of("tcg3 groups", sh.groups)?, 1);
        let block = u32_of("tcg3 threads", sh.rb)?;
        let name = tcg3_name(role, w.fmt);
        // SAFETY: tcg3_*(GemvArgs, ks, xw, nst): GemvArgs mirrors the CUDA struct; block (s, gr)
        // reads x rows < rows, columns [s·ks, s·ks + ks) ∩ [0, k) (checked: rows × k act), weight
        // rows [gr·rb, gr·rb + rb) ∩ [0, n) (checked for n × k), and writes the role's outputs
        // checked above for `rows` rows (QKV rows: the cache at (row_slot, row_pos)). Dynamic shared
        // memory `sh.smem` (checked against what the kernel uses, allowed at engine load); the
        // slices of a row group are one cluster (grid.0 = cluster size <= 8).
        unsafe {
            if sh.slices > 1 {
                self.gpu.launch_cluster(&name, grid, block, sh.smem as u32, grid.0, &mut args!(a, ks, xw, nst))
            } else {
                self.gpu.launch(&name, grid, block, sh.smem as u32, &mut args!(a, ks, xw, nst))
            }
        }
    }

    /// Repacks an f16 (n × k) row-major weight into tcg4's layout (kernels.cu `tcg4_pack`): 64-row
    /// tiles (rows >= n zero), each tile over k as 8-column groups of 64 rows × 16 bytes.
    pub fn tcg4_pack(&self, w: View, out: View, n: usize, k: usize) -> Result<()> {
        if !tcg4_fits(n, k) {
            return Err(Error::Gpu(format!("tcg4_pack: {n} × {k}")));
        }
        let tiles = n.div_ceil(64);
        need("tcg4_pack input", &w, DType::F16, n * k)?;
        need("tcg4_pack output", &out, DType::F16, tiles * 64 * k)?;
        let blocks = ((tiles * 64 * k / 8).div_ceil(256) as u32).min(self.gpu.sms * 16);
        let (mut wp, mut op) = (w.addr(), out.addr());
        let (mut ni, mut ki, mut ti) = (i32_of("n", n)?, i32_of("k", k)?, i32_of("tiles", tiles)?);
        // SAFETY: tcg4_pack(w, o, N, K, tiles): reads n × k f16, writes tiles · 64 · k f16 (checked
        // above), a grid-stride loop over 16-byte vectors (k % 16 == 0).
        unsafe { self.gpu.launch("tcg4_pack", (blocks, 1, 1), 256, 0, &mut args!(wp, op, ni, ki, ti)) }
    }

    /// One session-7 wgmma batched decode GEMM (`tcg4_<role>_<nt>`) over `rows` rows; `w` is the
    /// tcg4-packed f16 copy (n = the linear's real rows).
    pub fn tcg4(
        &self,
        role: Role,
        sh: Tcg4Shape,
        w: &Weights,
        io: &GemvIo,
        out_act: Option<View>,
        rows: usize,
    ) -> Result<()> {
        let d = self.d;
        let k = d.role_k(role);
        let n = w.n;
        if w.k != k || d.act != DType::F16 || w.fmt != WeightFormat::F16 || !tcg4_fits(n, k) {
            return Err(Error::Gpu(format!(
                "{} tcg4 GEMM: k = {} (kernel {k}), n = {n}, {:?}",
                role.tag(),
                w.k,
                w.fmt
            )));
        }
        let bad = rows <= GEMV_MAX_T
            || rows > sh.nt
            || sh.slices == 0
            || sh.slices > TCG3_MAX_S
            || sh.ks * sh.slices < k
            || sh.ks % 64 != 0
            || sh.tiles != n.div_ceil(64)
            || !(2..=16).contains(&sh.nst)
            || sh.smem > TCG3_SMEM_MAX
            || sh.smem < tcg4_smem(sh.nt, sh.nst);
        if bad {
            return Err(Error::Gpu(format!("{} tcg4 GEMM: {rows} rows, shape {sh:?}", role.tag())));
        }
        // The packed copy carries one zeroed stage past its last tile (whole-stage copies).
        need("tcg4 packed weights", &w.data.view(DType::F16), DType::F16, sh.tiles * 64 * k + TCG4_KC * 64)?;
        need("tcg4 x", &io.x, d.act, rows * k)?;
        io.check_role_outputs(d, role, &out_act, "tcg4", rows, n)?;
        let mut a = io.args(w, addr_opt(&out_act), rows, n)?;
        // `dm`: the kernel's session-7 variant switch, unused since session 15 (always 0).
        let (mut ks, mut nst, mut dmv) = (i32_of("ks", sh.ks)?, i32_of("nst", sh.nst)?, 0i32);
        let grid = (u32_of("tcg4 slices", sh.slices)?, u32_of("tcg4 tiles", sh.tiles)?, 1);
        let name = tcg4_name(role, sh.nt);
        // x (rows × k act) as 64-column × nt-row TMA boxes, rows >= `rows` zero-filled.
        let mut tmx = self.gpu.tensor_map_f16_sw128(io.x.addr(), rows, k, u32_of("tcg4 nt", sh.nt)?, TCG4_KC as u32)?;
        // SAFETY: tcg4_*(GemvArgs, ks, nst, dm, tmx): GemvArgs mirrors the CUDA struct, tmx is the
        // 128-byte CUtensorMap (G4Tmap) over x's rows × k f16; block (s, tile) bulk-copies packed
        // weight bytes [tile · k · 128 + s · ks · 128, + whole 8 KB stages covering min(ks, k - s·ks))
        // (inside tiles · 64 · k f16 + the 8 KB zeroed tail, checked), reads x rows < rows (the map's
        // bounds; past them the TMA fills zeros), columns of its slice (checked: rows × k act), and
        // writes the role's outputs checked above for `rows` rows (QKV rows: the cache at (row_slot,
        // row_pos)). Dynamic shared memory `sh.smem` (>= what the kernel uses,
        // allowed at engine load); the slices of a tile are one cluster (grid.0 = cluster size <= 8).
        unsafe {
            if sh.slices > 1 {
                self.gpu.launch_cluster(
                    &name,
                    grid,
                    TCG4_THREADS,
                    sh.smem as u32,
                    grid.0,
                    &mut args!(a, ks, nst, dmv, tmx),
                )
            } else {
                self.gpu.launch(&name, grid, TCG4_THREADS, sh.smem as u32, &mut args!(a, ks, nst, dmv, tmx))
            }
        }
    }

    /// Causal softmax of one sequence's scores: P (n_heads, n, total) act from S (same) f32; row i
    /// sees keys 0..=start+i.
    pub fn softmax_causal(&self, s: View, p: View, n: usize, total: usize, start: usize) -> Result<()> {
        let d = self.d;
        need("scores", &s, DType::F32, d.n_heads * n * total)?;
        need("probabilities", &p, d.act, d.n_heads * n * total)?;
        let (mut sp, mut pp) = (s.addr(), p.addr());
        let (mut ni, mut ti, mut st) = (i32_of("n", n)?, i32_of("total", total)?, i32_of("start", start)?);
        // SAFETY: softmax_causal(S, P, n, total, start): block (i, h) reads and writes row (h, i)
        // of total elements of S/P, checked above.
        unsafe {
            self.gpu.launch(
                "softmax_causal",
                (u32_of("n", n)?, u32_of("n_heads", d.n_heads)?, 1),
                256,
                0,
                &mut args!(sp, pp, ni, ti, st),
            )
        }
    }

    /// Attention of layer `layer` for sequence `si` of a long prefill pass on tensor cores:
    /// Sᵀ = K · qᵀ (scaled), causal softmax, outᵀ = Vᵀ · Pᵀ, through the pointer arrays in `ptrs`
    /// (uploaded by [`AttnPtrs::upload`] for this pass).
    pub fn attn_tc(&self, ptrs: &DevBuf, table: &AttnPtrs, b: &AttnTcBufs, layer: usize, si: usize) -> Result<()> {
        let d = self.d;
        let (nh, hd) = (d.n_heads, d.head_dim);
        let nseq = table.seqs.len();
        if layer >= table.layers || si >= nseq {
            return Err(Error::Gpu(format!(
                "tensor-core attention: layer {layer} / sequence {si} not in the uploaded table ({} × {nseq})",
                table.layers
            )));
        }
        let (n, total) = table.seqs[si];
        let start = total - n;
        let arrays = ptrs.view(DType::U64);
        let arr = |which: usize| arrays.slice(((layer * nseq + si) * 6 + which) * nh, nh);
        let t = d.act.gemm()?;
        let scale = 1.0 / (hd as f32).sqrt();
        let (a0, a1, a2, a3, a4, a5) = (arr(0)?, arr(1)?, arr(2)?, arr(3)?, arr(4)?, arr(5)?);
        // SAFETY: the six pointer arrays were written by AttnPtrs::upload for exactly this
        // (layer, sequence) with these (n, total), each address checked to name a whole matrix
        // (K/V: total × hd rows of the layer cache; q/out: n rows of stride q_dim; S/P: n × total)
        // inside buffers the engine owns for its lifetime; the arrays themselves lie in `ptrs`.
        unsafe {
            // Sᵀ (total × n) = K (total × hd) · qᵀ, scaled: the column-major view of S (n, total).
            self.gpu.gemm_batched(
                true,
                total,
                n,
                hd,
                scale,
                a0.addr(),
                hd,
                a1.addr(),
                d.q_dim,
                t,
                a2.addr(),
                total,
                GemmType::F32,
                nh,
            )?;
        }
        self.softmax_causal(b.scores, b.probs, n, total, start)?;
        // SAFETY: as above.
        unsafe {
            // outᵀ (hd × n) = Vᵀ (hd × total) · Pᵀ (total × n)
            self.gpu.gemm_batched(
                false,
                hd,
                n,
                total,
                1.0,
                a3.addr(),
                hd,
                a4.addr(),
                total,
                t,
                a5.addr(),
                d.q_dim,
                t,
                nh,
            )
        }
    }

    /// `argmax_rows`: next[t] = argmax of logits row t, (rows, vocab) f32.
    pub fn argmax_rows(&self, logits: View, next: View, rows: usize) -> Result<()> {
        need("logits", &logits, DType::F32, rows * self.d.vocab)?;
        need("next tokens", &next, DType::I32, rows)?;
        let (mut lp, mut np) = (logits.addr(), next.addr());
        // SAFETY: argmax_rows(logits, next): block t reads logits row t, writes next[t]; checked.
        unsafe { self.gpu.launch("argmax_rows", (u32_of("rows", rows)?, 1, 1), 1024, 0, &mut args!(lp, np)) }
    }

    /// `argmax_mb` (session 7): the same result as [`Self::argmax_rows`] from `am_blocks(vocab)`
    /// blocks per row; `keys` (u64) and `cnt` (i32), at least `rows` each, must hold zeros (the
    /// kernel leaves them so).
    pub fn argmax_mb(&self, logits: View, next: View, keys: View, cnt: View, rows: usize) -> Result<()> {
        need("logits", &logits, DType::F32, rows * self.d.vocab)?;
        need("next tokens", &next, DType::I32, rows)?;
        need("argmax keys", &keys, DType::U64, rows)?;
        need("argmax counters", &cnt, DType::I32, rows)?;
        let (mut lp, mut np, mut kp, mut cp) = (logits.addr(), next.addr(), keys.addr(), cnt.addr());
        let grid = (am_blocks(self.d.vocab), u32_of("rows", rows)?, 1);
        // SAFETY: argmax_mb(logits, next, keys, cnt): block (x, t) reads its slice of logits row t,
        // updates keys[t] / cnt[t] atomically, the row's last block writes next[t]; checked.
        unsafe { self.gpu.launch("argmax_mb", grid, 256, 0, &mut args!(lp, np, kp, cp)) }
    }

    /// `advance`: tokens[t] = next[t], row_pos[t] += 1 (clamped to max_seq - 1), for t < b.
    pub fn advance(&self, next: View, tokens: View, pos: View, b: usize) -> Result<()> {
        need("next tokens", &next, DType::I32, b)?;
        need("tokens", &tokens, DType::I32, b)?;
        need("row positions", &pos, DType::I32, b)?;
        let (mut np, mut tp, mut pp, mut bi) = (next.addr(), tokens.addr(), pos.addr(), i32_of("b", b)?);
        // SAFETY: advance(next, tokens, row_pos, T): thread t < T reads next[t], writes tokens[t]
        // and row_pos[t]; all three hold b entries.
        unsafe { self.gpu.launch("advance", ((b as u32).div_ceil(128), 1, 1), 128, 0, &mut args!(np, tp, pp, bi)) }
    }

    /// `mk_step` (`TRTFORGE_MK=1`): the whole one-row decode step as one persistent
    /// launch of `grid` blocks (one an SM, all resident at once: the caller passes the SM count and
    /// has allowed `smem` = `MkDims::smem` of dynamic shared memory); `a` holds every buffer (mk.rs `MkArgs`).
    pub fn mk_step(&self, a: &super::mk::MkArgs, grid: u32, smem: u32) -> Result<()> {
        let mut a = *a;
        // SAFETY: mk_step(MK_Args) takes one argument block whose layout `MkArgs` mirrors field for
        // field (mk.rs test `the_argument_block_has_the_kernels_layout`); the loader (mk_load.rs,
        // the engine's load) sized every buffer it points to by `MkSizes`.
        unsafe { self.gpu.launch("mk_step", (grid, 1, 1), super::mk::THREADS as u32, smem, &mut args!(a)) }
    }

    /// `hist_put`: `next[0..b)` into row `ctr[0]` of `hist` (rows of `b`, at most `hist.len() / b`
    /// rows written), then `ctr[0]` + 1 (the on-GPU greedy loop's graphs of several steps).
    pub fn hist_put(&self, next: View, hist: View, ctr: View, b: usize) -> Result<()> {
        need("next tokens", &next, DType::I32, b)?;
        need("step counter", &ctr, DType::I32, 1)?;
        need("token history", &hist, DType::I32, b)?;
        let rows = hist.len() / b.max(1);
        let (mut np, mut hp, mut cp) = (next.addr(), hist.addr(), ctr.addr());
        let (mut bi, mut ri) = (i32_of("b", b)?, i32_of("rows", rows)?);
        // SAFETY: hist_put(next, hist, ctr, T, rows): reads next[0..T) and ctr[0], writes
        // hist[ctr * T .. + T) only when ctr < rows (hist holds rows * T) and ctr[0].
        unsafe { self.gpu.launch("hist_put", (1, 1, 1), 128, 0, &mut args!(np, hp, cp, bi, ri)) }
    }

    /// `mk_advance` (after each `mk_step`, in place of argmax + advance): the step's argmax (its
    /// head's key `best[epoch % 3]`) into `next[0]` and `tokens[0]`, `pos[0]` + 1, then the
    /// megakernel's launch counter `epoch` + 1; and, as [`Self::hist_put`] for one row, the token into
    /// `hist[ctr[0]]` (while `ctr[0]` < `hist`'s length), `ctr[0]` + 1.
    #[allow(clippy::too_many_arguments)]
    pub fn mk_advance(
        &self,
        best: View,
        epoch: View,
        next: View,
        tokens: View,
        pos: View,
        hist: View,
        ctr: View,
    ) -> Result<()> {
        need("mk argmax keys", &best, DType::U64, 3)?;
        need("mk epoch", &epoch, DType::I32, 1)?;
        need("next tokens", &next, DType::I32, 1)?;
        need("tokens", &tokens, DType::I32, 1)?;
        need("row positions", &pos, DType::I32, 1)?;
        need("token history", &hist, DType::I32, 1)?;
        need("step counter", &ctr, DType::I32, 1)?;
        let (mut bp, mut ep) = (best.addr(), epoch.addr());
        let (mut np, mut tp, mut pp) = (next.addr(), tokens.addr(), pos.addr());
        let (mut hp, mut cp, mut rows) = (hist.addr(), ctr.addr(), i32_of("rows", hist.len())?);
        // SAFETY: mk_advance(best, epoch, next, tokens, row_pos, hist, hctr, rows): one thread reads
        // best[0..3] (u64), epoch[0] and hctr[0], writes next[0], tokens[0], row_pos[0], epoch[0],
        // hctr[0] and hist[hctr] only when hctr < rows = hist's length; each view holds that.
        unsafe { self.gpu.launch("mk_advance", (1, 1, 1), 32, 0, &mut args!(bp, ep, np, tp, pp, hp, cp, rows)) }
    }

    /// `sample_topk_topp`: next[t] sampled from logits row t (top-k, then top-p, at 1/inv_t).
    #[allow(clippy::too_many_arguments)]
    pub fn sample_topk_topp(
        &self,
        logits: View,
        next: View,
        rows: usize,
        inv_temp: f32,
        top_k: usize,
        top_p: f32,
        seed: u64,
        step: u64,
    ) -> Result<()> {
        need("logits", &logits, DType::F32, rows * self.d.vocab)?;
        need("next tokens", &next, DType::I32, rows)?;
        let (mut lp, mut np) = (logits.addr(), next.addr());
        // The kernel clamps k to SAMPLE_MAX_K; saturate rather than wrap.
        let (mut it, mut k, mut p) = (inv_temp, top_k.min(i32::MAX as usize) as i32, top_p);
        let (mut sd, mut st) = (seed, step);
        // SAFETY: sample_topk_topp(logits, next, inv_temp, top_k, top_p, seed, step): block t reads
        // logits row t and writes next[t]; checked above. Scalars are passed by value.
        unsafe {
            self.gpu.launch(
                "sample_topk_topp",
                (u32_of("rows", rows)?, 1, 1),
                SAMPLE_THREADS,
                0,
                &mut args!(lp, np, it, k, p, sd, st),
            )
        }
    }

    /// `sample_rows`: per-row settings `params` (rows, 8) i32 (cuda/paged.rs `sample_rest`); rows
    /// flagged greedy keep next[t], the others get a token sampled from logits row t.
    pub fn sample_rows(&self, logits: View, next: View, params: View, rows: usize) -> Result<()> {
        need("logits", &logits, DType::F32, rows * self.d.vocab)?;
        need("next tokens", &next, DType::I32, rows)?;
        need("sampling settings (rows, 8)", &params, DType::I32, rows * 8)?;
        let (mut lp, mut np, mut pp) = (logits.addr(), next.addr(), params.addr());
        // SAFETY: sample_rows(logits, next, params): block t reads logits row t and params row t,
        // writes next[t]; all checked above.
        unsafe {
            self.gpu.launch("sample_rows", (u32_of("rows", rows)?, 1, 1), SAMPLE_THREADS, 0, &mut args!(lp, np, pp))
        }
    }

    /// cuBLAS: c (rows, n) f32 = a (rows, k) · w (n, k)ᵀ + beta · c, row-major, f32 accumulation.
    /// `w` and `a` are f16 or f32 (their views' types).
    #[allow(clippy::too_many_arguments)]
    pub fn gemm(&self, rows: usize, n: usize, k: usize, w: View, a: View, c: View, beta: f32) -> Result<()> {
        let (wt, at) = (w.dtype.gemm()?, a.dtype.gemm()?);
        need("GEMM weights", &w, w.dtype, n * k)?;
        need("GEMM input", &a, a.dtype, rows * k)?;
        need("GEMM output", &c, DType::F32, rows * n)?;
        for (what, x) in [("rows", rows), ("n", n), ("k", k)] {
            i32_of(what, x)?;
        }
        // SAFETY: gemm reads n × k of w and rows × k of a, reads (beta != 0) and writes rows × n
        // f32 of c; the views were checked to hold that many elements of those types.
        unsafe { self.gpu.gemm(rows, n, k, w.addr(), wt, a.addr(), at, c.addr(), beta) }
    }

    /// cuBLASLt: c (rows, n) = a (rows, k) · w (n, k)ᵀ, plus c where `accumulate` (the residual
    /// stream), row-major, f32 accumulation; w and a f16, c f32 or f16 (its view's type). The first
    /// call of a shape times the candidate algorithms writing into `scratch` (rows × n of c's type;
    /// c itself when not accumulating), outside graph capture (see [`Gpu::gemm_lt`]).
    #[allow(clippy::too_many_arguments)]
    pub fn gemm_lt(
        &self,
        rows: usize,
        n: usize,
        k: usize,
        w: View,
        a: View,
        c: View,
        accumulate: bool,
        scratch: View,
    ) -> Result<()> {
        let out = match c.dtype {
            DType::F32 => LtType::F32,
            DType::F16 => LtType::F16,
            t => return Err(Error::Gpu(format!("cuBLASLt GEMM output of type {t:?}"))),
        };
        need("GEMM weights", &w, DType::F16, n * k)?;
        need("GEMM input", &a, DType::F16, rows * k)?;
        need("GEMM output", &c, c.dtype, rows * n)?;
        need("GEMM tuning scratch", &scratch, c.dtype, rows * n)?;
        let s = LtShape {
            rows,
            n,
            k,
            w: LtType::F16,
            a: LtType::F16,
            out,
            accumulate,
            w_scale: LtScale::None,
            a_scale: LtScale::None,
        };
        let p = LtPtrs { w: w.addr(), a: a.addr(), c: c.addr(), w_scale: 0, a_scale: 0, scratch: scratch.addr() };
        // SAFETY: reads n × k of w and rows × k of a, reads (accumulate) and writes rows × n of c,
        // and while tuning writes rows × n of scratch; all views checked above for those types.
        unsafe { self.gpu.gemm_lt(&s, &p) }
    }

    /// One session-28 FP8 GEMM (`f8g_*`, kernels_f8g.cu, sm_90a) over 9..=64 rows: dst (rows, n) f32 =
    /// xs[t] · ws[n] · Σ_k e4m3(xq[t, k]) · e4m3(w[n, k]) (+ dst where `accumulate`); w (n, k) E4M3 codes
    /// with per-output-row f32 scales ws, xq (rows, k) codes with per-row f32 scales xs.
    #[allow(clippy::too_many_arguments)]
    pub fn f8g(
        &self,
        rows: usize,
        n: usize,
        k: usize,
        w: View,
        ws: View,
        xq: View,
        xs: View,
        dst: View,
        accumulate: bool,
    ) -> Result<()> {
        let (name, nt, nst) =
            f8g_kernel(rows).ok_or_else(|| Error::Gpu(format!("f8g: {rows} rows (9..=64 run it)")))?;
        if !self.gpu.f8g || !f8g_fits(n, k) {
            return Err(Error::Gpu(format!("f8g: an {n} × {k} linear (module with f8g: {})", self.gpu.f8g)));
        }
        need("f8g weights", &w, DType::U8, n * k)?;
        need("f8g weight scales", &ws, DType::F32, n)?;
        need("f8g x codes", &xq, DType::U8, rows * k)?;
        need("f8g x scales", &xs, DType::F32, rows)?;
        need("f8g output", &dst, DType::F32, rows * n)?;
        let slices = f8g_slices(n, k, nt);
        let per = (k / F8G_KC).div_ceil(slices);
        let smem = f8g_smem(nt, nst);
        // Weights as boxes of 64 rows × 128 k, x as boxes of nt rows × 128 k (rows >= `rows` zero-filled).
        let mut tmw = self.gpu.tensor_map_u8_sw128(w.addr(), n, k, 64, F8G_KC as u32)?;
        let mut tmx = self.gpu.tensor_map_u8_sw128(xq.addr(), rows, k, u32_of("f8g nt", nt)?, F8G_KC as u32)?;
        let (mut wsp, mut xsp, mut yp) = (ws.addr(), xs.addr(), dst.addr());
        let (mut ti, mut ni, mut ki, mut pi, mut ai) =
            (i32_of("rows", rows)?, i32_of("n", n)?, i32_of("k", k)?, i32_of("per", per)?, accumulate as i32);
        let grid = (u32_of("f8g slices", slices)?, u32_of("f8g tiles", n.div_ceil(64))?, 1);
        // SAFETY: f8g_*(tmw, tmx, ws, xs, y, T, N, K, per, acc): the two 128-byte CUtensorMaps (HopTmap)
        // bound the TMA reads to w's n × k and xq's rows × k bytes (checked above); block (s, tile) reads
        // ws[64·tile ..), xs[t < rows] and writes (reads where acc) dst rows t < rows, columns n' < n
        // (checked: rows × n f32). Dynamic shared memory `smem` (allowed at engine load, `f8g_smem`); the
        // slices of a tile are one cluster (grid.0 = cluster size <= 8, dividing nt).
        unsafe {
            let a = &mut args!(tmw, tmx, wsp, xsp, yp, ti, ni, ki, pi, ai);
            if slices > 1 {
                self.gpu.launch_cluster(name, grid, F8G_THREADS, smem as u32, grid.0, a)
            } else {
                self.gpu.launch(name, grid, F8G_THREADS, smem as u32, a)
            }
        }
    }

    /// One session-37 quantized decode GEMM (`wq_*`, kernels_wq.cu, sm_90a) over 9..=64 rows: dst (rows, n) f32 =
    /// x (rows, k) · Wᵀ (+ dst where `accumulate`), W an int8 / int4 g128 / fp8 linear in wq.rs's pack (`w`:
    /// n · k bytes, int4 n · k / 2) with its f16 scales (`sc`: int8 / fp8 one a row, int4 wq.rs's packed group
    /// scales), x the pass's f16 activation rows; `slices` K slices (a cluster), `nst` ring slots (wq::shape); `cm`
    /// the copies a stage (wq::copy_mode): with `wq::CM_INLINE` an int4 `w` is wq::pack4_inline's (scales inside,
    /// `sc` not read), with `wq::CM_X3` x goes through the 3-D tensor map.
    #[allow(clippy::too_many_arguments)]
    pub fn wq(
        &self,
        fmt: WeightFormat,
        rows: usize,
        n: usize,
        k: usize,
        w: View,
        sc: Option<View>,
        x: View,
        dst: View,
        accumulate: bool,
        (slices, nst): (usize, usize),
        cm: i32,
    ) -> Result<()> {
        let name = super::wq::kernel_name(fmt, nst)
            .ok_or_else(|| Error::Gpu(format!("wq: no kernel for {fmt:?} / {nst} slots")))?;
        if !self.gpu.wq || !super::wq::fits(fmt, n, k) || rows <= GEMV_MAX_T || rows > super::wq::MAX_ROWS {
            return Err(Error::Gpu(format!(
                "wq: {rows} rows of an {n} × {k} {fmt:?} linear (module with wq: {})",
                self.gpu.wq
            )));
        }
        let nch = k / super::wq::KC;
        if !super::wq::slices_ok(k, slices) {
            return Err(Error::Gpu(format!("wq: {slices} K slices of {nch} chunks")));
        }
        let i4 = matches!(fmt, WeightFormat::I4 { .. });
        if cm & !(super::wq::CM_X3 | super::wq::CM_INLINE) != 0 {
            return Err(Error::Gpu(format!("wq: copy mode {cm}")));
        }
        let inline = i4 && cm & super::wq::CM_INLINE != 0;
        let wbytes = match (i4, inline) {
            (true, true) => n / super::wq::TILE * nch * super::wq::CHUNK4_INLINE,
            (true, false) => n * k / 2,
            _ => n * k,
        };
        need("wq weights", &w, DType::U8, wbytes)?;
        // int4 with its scales inline reads none from `sc`: any valid address stands in
        let sc = match sc {
            Some(v) if !inline => {
                need("wq scales", &v, DType::F16, if i4 { n * nch } else { n })?;
                v.addr()
            }
            _ if inline => w.addr(),
            _ => return Err(Error::Gpu("wq: a quantized linear without scales".into())),
        };
        need("wq x", &x, DType::F16, rows * k)?;
        need("wq output", &dst, DType::F32, rows * n)?;
        // The rows x's tensor map spans: all 64 of a box where the view holds them, so that the TMA need not zero-fill
        // the box past `rows` (session 51, H100: int8 gate/up at 40 rows 9.65 µs against 14.50 with the fill).
        // Whatever rows >= `rows` hold reaches only their own outputs (x is the MMA's N side: an output column each),
        // which are never written; a view of fewer rows keeps the zero-fill.
        let xrows = if x.len() >= super::wq::MAX_ROWS * k { super::wq::MAX_ROWS } else { rows };
        // the kernel reads x by TMA while other blocks write dst: they must not share bytes
        if overlap((dst.addr(), rows * n * DType::F32.size()), (x.addr(), xrows * k * DType::F16.size())) {
            return Err(Error::Gpu("wq: the output overlaps the input rows".into()));
        }
        // x as boxes of 64 rows × 64 k (128 bytes, SW128), or of two such tiles (3-D), rows >= `xrows` zero-filled.
        let mut tmx = if cm & super::wq::CM_X3 != 0 {
            self.gpu.tensor_map_f16_sw128_k2(x.addr(), xrows, k)?
        } else {
            self.gpu.tensor_map_f16_sw128(x.addr(), xrows, k, 64, 64)?
        };
        let (mut wp, mut sp, mut yp) = (w.addr(), sc, dst.addr());
        let (mut ni, mut ki, mut pi, mut ti, mut ai, mut ci) = (
            i32_of("n", n)?,
            i32_of("k", k)?,
            i32_of("per", nch.div_ceil(slices))?,
            i32_of("rows", rows)?,
            accumulate as i32,
            cm,
        );
        let grid = (u32_of("wq slices", slices)?, u32_of("wq tiles", n / super::wq::TILE)?, 1);
        let smem = super::wq::smem(fmt, nst) as u32;
        // SAFETY: wq_*(tmx, w, sc, y, N, K, per, T, acc, cm): the CUtensorMap (HopTmap, 128 bytes; 2-D, or 3-D
        // where cm & CM_X3, the kernel's box of the same rank) bounds the TMA reads to x's xrows × k halves (checked
        // above); block (s, tile) bulk-copies its tile's chunks [s·per, min((s+1)·per, k/128)) of w (n·k, n·k/2 or
        // with int4's inline scales (n/64)·(k/128)·4,224 bytes, checked) and, without them, of int4's packed scales
        // (n·k/128 f16, checked), reads the row scales sc[tile·64 ..) (n f16, checked) of int8 / fp8, and writes
        // (reads where acc) dst rows t < rows, columns < n (checked: rows × n f32). Dynamic shared memory `smem`
        // (allowed at engine load, wq::smem); the slices of a tile are one cluster (grid.0 = cluster size <= 8).
        unsafe {
            let a = &mut args!(tmx, wp, sp, yp, ni, ki, pi, ti, ai, ci);
            if slices > 1 {
                self.gpu.launch_cluster(name, grid, super::wq::THREADS, smem, grid.0, a)
            } else {
                self.gpu.launch(name, grid, super::wq::THREADS, smem, a)
            }
        }
    }

    /// cuBLASLt FP8 E4M3: c (rows, n) = (a · a_scale) (rows, k) · (w · w_scale) (n, k)ᵀ (+ c), f32
    /// accumulation; w (n, k) codes with per-output-channel (`w_mode` = `LtScale::OuterVec`, n) or
    /// per-tensor (`Scalar`, 1) f32 scales, a (rows, k) codes with per-row (`OuterVec`, rows) or
    /// per-tensor (`Scalar`, 1) f32 scales; c f32 or f16.
    #[allow(clippy::too_many_arguments)]
    pub fn gemm_fp8(
        &self,
        rows: usize,
        n: usize,
        k: usize,
        w: View,
        w_scale: View,
        w_mode: LtScale,
        a: View,
        a_scale: View,
        a_mode: LtScale,
        c: View,
        accumulate: bool,
        scratch: View,
    ) -> Result<()> {
        let out = match c.dtype {
            DType::F32 => LtType::F32,
            DType::F16 => LtType::F16,
            t => return Err(Error::Gpu(format!("FP8 GEMM output of type {t:?}"))),
        };
        if self.gpu.cc < (8, 9) || k % 16 != 0 {
            return Err(Error::Gpu(format!("FP8 GEMM needs sm_89+ and k % 16 == 0 (k = {k})")));
        }
        need("fp8 weights", &w, DType::U8, n * k)?;
        let count = |m: LtScale, vec: usize| match m {
            LtScale::OuterVec => vec,
            LtScale::Scalar => 1,
            LtScale::None => 0,
        };
        need("fp8 weight scales", &w_scale, DType::F32, count(w_mode, n))?;
        need("fp8 input", &a, DType::U8, rows * k)?;
        need("fp8 input scales", &a_scale, DType::F32, count(a_mode, rows))?;
        need("GEMM output", &c, c.dtype, rows * n)?;
        need("GEMM tuning scratch", &scratch, c.dtype, rows * n)?;
        let s =
            LtShape { rows, n, k, w: LtType::E4M3, a: LtType::E4M3, out, accumulate, w_scale: w_mode, a_scale: a_mode };
        let p = LtPtrs {
            w: w.addr(),
            a: a.addr(),
            c: c.addr(),
            w_scale: w_scale.addr(),
            a_scale: a_scale.addr(),
            scratch: scratch.addr(),
        };
        // SAFETY: as gemm_lt, plus the f32 scales their modes read (n or 1, rows or 1), checked above.
        unsafe { self.gpu.gemm_lt(&s, &p) }
    }

    /// Device-to-device copy, see [`copy`].
    pub fn copy(&self, dst: View, src: View) -> Result<()> {
        copy(self.gpu, dst, src)
    }
}

/// Device-to-device copy of `src` into `dst` (same type; `dst` at least as long), queued on the
/// engine's stream.
pub fn copy(gpu: &Gpu, dst: View, src: View) -> Result<()> {
    need("copy destination", &dst, src.dtype, src.len)?;
    let bytes = src.len * src.dtype.size();
    // SAFETY: src holds `bytes` bytes and dst at least as many (checked); both buffers are
    // borrowed for the call and freed only after the engine synchronizes its stream.
    unsafe {
        cudarc::driver::result::memcpy_dtod_async(dst.addr(), src.addr(), bytes, gpu.stream.cu_stream())
            .map_err(|e| Error::Gpu(format!("device-to-device copy: {e:?}")))
    }
}

/// The attention phase of the persistent decode layer: as [`Kernels::attn_decode`]'s buffers, `ns`
/// splits per (row, kv head), the layer's cache from the QKV phase's [`GemvIo`].
#[derive(Clone, Copy)]
pub struct PersistAttn<'a> {
    /// (rows, q_dim) f32 from the QKV phase.
    pub q: View<'a>,
    /// (rows, q_dim) act: the O phase's input (its [`GemvIo::x`]).
    pub out: View<'a>,
    pub part: View<'a>,
    pub counters: View<'a>,
    pub ns: usize,
}

/// The parameter block of `persist_layer` (`struct PersistArgs` in kernels.cu).
#[repr(C)]
#[derive(Clone, Copy)]
struct PersistArgs {
    qkv: GemvArgs,
    o: GemvArgs,
    gu: GemvArgs,
    dn: GemvArgs,
    q: u64,
    kc: u64,
    vc: u64,
    att_out: u64,
    part: u64,
    counters: u64,
    row_pos: u64,
    row_slot: u64,
    bar: u64,
    stamps: u64,
    nsplit: i32,
    t: i32,
}

/// u64 profiling stamps per layer of `persist_layer` (`PERSIST_NSTAMP` in kernels.cu).
pub const PERSIST_NSTAMP: usize = 16;

impl Kernels<'_> {
    /// One decode layer in one launch (`persist_layer`, issue #11): RMSNorm + QKV (RoPE, KV
    /// append), attention, O + residual, RMSNorm + gate/up + SwiGLU, down + residual, separated by
    /// grid barriers. `lin` are the four linears in that order with their GEMV inputs/outputs;
    /// `grid` blocks of TC_THREADS must all be resident at once (the caller sizes it by the
    /// occupancy API) and `smem` is the dynamic shared memory (`tc_smem(rows, widest k)`). `bar`
    /// is the engine's barrier counter (one u64, only ever increased by this kernel); `stamps`, when
    /// profiling, PERSIST_NSTAMP u64 (zeroed) that receive the phases' %globaltimer stamps.
    #[allow(clippy::too_many_arguments)]
    pub fn persist_layer(
        &self,
        grid: u32,
        smem: usize,
        lin: [(&Weights, &GemvIo); 4],
        att: &PersistAttn,
        bar: View,
        stamps: Option<View>,
        rows: usize,
    ) -> Result<()> {
        let d = self.d;
        let roles = [Role::Qkv, Role::O, Role::GateUp, Role::Down];
        if rows == 0 || rows > GEMV_MAX_T || grid == 0 || d.act != DType::F16 {
            return Err(Error::Gpu(format!("persistent layer: cannot run {rows} rows on {grid} blocks")));
        }
        let fmt = lin[0].0.fmt;
        let mut a = Vec::with_capacity(4);
        for (&role, &(w, io)) in roles.iter().zip(lin.iter()) {
            if w.fmt != fmt || w.n % 16 != 0 || smem < tc_smem(rows, d.role_k(role)) {
                return Err(Error::Gpu(format!("persistent layer: {} weights do not fit the kernel", role.tag())));
            }
            a.push(self.gemv_args(role, w, io, rows)?);
        }
        let cache = lin[0].1.cache.ok_or_else(|| Error::Gpu("persistent layer: no KV cache".into()))?;
        if att.ns == 0 || att.ns > d.nsplit || att.ns > 64 {
            return Err(Error::Gpu(format!("persistent layer: {} splits (1..={} and <= 64)", att.ns, d.nsplit)));
        }
        need("q", &att.q, DType::F32, rows * d.q_dim)?;
        need("attention output", &att.out, d.act, rows * d.q_dim)?;
        need("attention partials", &att.part, DType::F32, rows * d.n_heads * d.nsplit * (d.head_dim + 4))?;
        need("attention counters", &att.counters, DType::I32, rows * d.n_kv)?;
        need("barrier counter", &bar, DType::U64, 1)?;
        if let Some(st) = &stamps {
            need("persistent layer stamps", st, DType::U64, PERSIST_NSTAMP)?;
        }
        let io = lin[0].1;
        if a[0].out != att.q.addr() || a[1].x != att.out.addr() {
            return Err(Error::Gpu("persistent layer: q / attention output differ from the GEMVs' buffers".into()));
        }
        let mut p = PersistArgs {
            qkv: a[0],
            o: a[1],
            gu: a[2],
            dn: a[3],
            q: att.q.addr(),
            kc: cache.k.addr(),
            vc: cache.v.addr(),
            att_out: att.out.addr(),
            part: att.part.addr(),
            counters: att.counters.addr(),
            row_pos: io.pos.addr(),
            row_slot: io.slot.addr(),
            bar: bar.addr(),
            stamps: addr_opt(&stamps),
            nsplit: i32_of("splits", att.ns)?,
            t: i32_of("rows", rows)?,
        };
        // SAFETY: PersistArgs mirrors `struct PersistArgs` of kernels.cu (four GemvArgs, eight
        // pointers, the barrier, the optional stamps (PERSIST_NSTAMP u64, checked), two ints); each
        // GemvArgs was checked by gemv_args for its role and
        // `rows` rows (the QKV epilogue's cache/positions/slots included), the attention buffers
        // above as in attn_decode (virtual blocks (split < ns, kv head, row < rows)), and the
        // barrier holds one u64. All `grid` blocks are co-resident (caller: SMs × occupancy at
        // `smem`), so the grid barriers complete; a block that never arrives traps, never hangs.
        unsafe { self.gpu.launch(PERSIST_KERNEL, (grid, 1, 1), TC_THREADS, smem as u32, &mut args!(p)) }
    }
}

/// Prefill kernels of session 6 (branch ttft, issue #11 TTFT): vectorized GEMM-path epilogues and
/// the shared-tile flash prefill attention.
impl Kernels<'_> {
    /// The checked arguments (x, w, out, rows) of the 16-byte-load RMSNorms `rmsnorm_v` / `rmsnorm_b`:
    /// x (rows × hidden) f32, w (hidden) f32, out (rows × hidden) of the activation type, all three
    /// 16-byte aligned.
    fn rmsnorm_vec_args(&self, name: &str, x: View, w: View, out: View, rows: usize) -> Result<(u64, u64, u64, i32)> {
        let d = self.d;
        need("rmsnorm input", &x, DType::F32, rows * d.hidden)?;
        need("rmsnorm weight", &w, DType::F32, d.hidden)?;
        need("rmsnorm output", &out, d.act, rows * d.hidden)?;
        if [&x, &w, &out].iter().any(|v| v.addr() % 16 != 0) {
            return Err(Error::Gpu(format!("{name}: buffers must start 16-byte aligned")));
        }
        Ok((x.addr(), w.addr(), out.addr(), i32_of("rows", rows)?))
    }

    /// `rmsnorm_v`: as [`rmsnorm`](Self::rmsnorm), one warp per row (hidden % 128 == 0).
    pub fn rmsnorm_v(&self, x: View, w: View, out: View, rows: usize) -> Result<()> {
        let d = self.d;
        if d.hidden % 128 != 0 {
            return Err(Error::Gpu(format!("rmsnorm_v needs hidden % 128 == 0 ({})", d.hidden)));
        }
        let (mut xp, mut wp, mut op, mut tr) = self.rmsnorm_vec_args("rmsnorm_v", x, w, out, rows)?;
        // SAFETY: rmsnorm_v(x, w, out, T): warp t < T reads row t of x (16-byte loads, aligned:
        // checked, hidden % 128 == 0) and all of w, writes row t of out; all checked to hold rows ×
        // hidden (w: hidden) elements.
        unsafe {
            self.gpu.launch(
                "rmsnorm_v",
                (u32_of("blocks", rows.div_ceil(4))?, 1, 1),
                128,
                0,
                &mut args!(xp, wp, op, tr),
            )
        }
    }

    /// `rmsnorm_b` (session 9): as [`rmsnorm_v`](Self::rmsnorm_v), one row per block of hidden / 8
    /// threads, the weight loaded before the PDL wait (hidden % 256 == 0, hidden ≤ 8192).
    pub fn rmsnorm_b(&self, x: View, w: View, out: View, rows: usize) -> Result<()> {
        let d = self.d;
        if d.hidden % 256 != 0 || d.hidden > 8192 {
            return Err(Error::Gpu(format!("rmsnorm_b needs hidden % 256 == 0 and ≤ 8192 ({})", d.hidden)));
        }
        let (mut xp, mut wp, mut op, mut tr) = self.rmsnorm_vec_args("rmsnorm_b", x, w, out, rows)?;
        // SAFETY: rmsnorm_b(x, w, out, T): block t < T (grid = rows) reads row t of x and all of w
        // (thread i float4 i and i + hidden / 8: 16-byte loads, aligned and hidden % 256 == 0:
        // checked), writes row t of out; all checked to hold rows × hidden (w: hidden) elements.
        unsafe {
            self.gpu.launch(
                "rmsnorm_b",
                (u32_of("blocks", rows)?, 1, 1),
                u32_of("threads", d.hidden / 8)?,
                0,
                &mut args!(xp, wp, op, tr),
            )
        }
    }

    /// `swiglu_v` (y f32) / `swiglu_hv` (y f16): as [`swiglu`](Self::swiglu), 4 outputs per thread
    /// (inter % 4 == 0).
    pub fn swiglu_v(&self, y: View, m: View, rows: usize) -> Result<()> {
        let d = self.d;
        let name = match y.dtype {
            DType::F32 => "swiglu_v",
            DType::F16 => "swiglu_hv",
            t => return Err(Error::Gpu(format!("swiglu_v: GEMM output of type {t:?}"))),
        };
        if d.inter % 4 != 0 || y.addr() % 16 != 0 || m.addr() % 8 != 0 {
            return Err(Error::Gpu("swiglu_v needs inter % 4 == 0 and aligned buffers".into()));
        }
        need("gate/up GEMM output", &y, y.dtype, rows * 2 * d.inter)?;
        need("swiglu output", &m, d.act, rows * d.inter)?;
        let blocks = ((rows * d.inter / 4).div_ceil(256) as u32).clamp(1, self.gpu.sms * 16);
        let (mut yp, mut mp, mut ri) = (y.addr(), m.addr(), i32_of("rows", rows)?);
        // SAFETY: swiglu_v/_hv(y, m, T): a grid-stride loop over rows × inter / 4 groups of 4
        // outputs, each reading 8 elements of y (16-byte aligned loads, checked) and writing 4 of m
        // (8-byte aligned: checked; f32 act: 16 bytes at a multiple of 4 elements of an aligned
        // buffer start); sizes checked above.
        unsafe { self.gpu.launch(name, (blocks, 1, 1), 256, 0, &mut args!(yp, mp, ri)) }
    }

    /// `rope_append_p` (y f32) / `rope_append_hp` (y f16): as [`rope_append`](Self::rope_append)
    /// without the act copy of q (only the cuBLAS prefill attention reads it), two RoPE pairs per
    /// thread; f16/f32 caches (head_dim % 4 == 0).
    pub fn rope_append_p(&self, e: QkvRows, q: View) -> Result<()> {
        let d = self.d;
        let QkvRows { y, cache, pos, slot, rope, rows } = e;
        let name = match y.dtype {
            DType::F32 => "rope_append_p",
            DType::F16 => "rope_append_hp",
            t => return Err(Error::Gpu(format!("rope_append_p: GEMM output of type {t:?}"))),
        };
        if d.head_dim % 4 != 0 || d.kv == DType::U8 || y.addr() % 16 != 0 || q.addr() % 8 != 0 {
            return Err(Error::Gpu("rope_append_p needs head_dim % 4 == 0, an f16/f32 cache, aligned y and q".into()));
        }
        e.check(d)?;
        need("q", &q, DType::F32, rows * d.q_dim)?;
        let gy = u32_of("chunks", (d.qkv_dim() / 4).div_ceil(256))?;
        let (mut yp, mut qp, mut kc, mut vc) = (y.addr(), q.addr(), cache.k.addr(), cache.v.addr());
        let (mut pp, mut sp, mut cp, mut snp) = (pos.addr(), slot.addr(), rope.cos.addr(), rope.sin.addr());
        // SAFETY: rope_append_p/_hp(y, qout, kc, vc, row_pos, row_slot, rcos, rsin): block (t, c)
        // reads 4 elements of row t of y per thread (aligned: the qkv width is a multiple of 4 and
        // y starts 16-byte aligned), pos[t] < max_seq and slot[t] < slots (host-built metadata), two
        // cos/sin pairs of row pos, writes 4 elements of row t of q or of one (slot, head, pos)
        // row of this layer's K/V caches (checked to be whole layers).
        unsafe {
            self.gpu.launch(name, (u32_of("rows", rows)?, gy, 1), 256, 0, &mut args!(yp, qp, kc, vc, pp, sp, cp, snp))
        }
    }

    /// cublasGemmEx with an f16 output: c (rows, n) f16 = a (rows, k) · w (n, k)ᵀ, f32 accumulation
    /// (the prefill qkv / gate-up GEMMs with `TRTFORGE_PREFILL_F16Y=1`).
    pub fn gemm_h(&self, rows: usize, n: usize, k: usize, w: View, a: View, c: View) -> Result<()> {
        let (wt, at) = (w.dtype.gemm()?, a.dtype.gemm()?);
        need("GEMM weights", &w, w.dtype, n * k)?;
        need("GEMM input", &a, a.dtype, rows * k)?;
        need("GEMM output", &c, DType::F16, rows * n)?;
        for (what, x) in [("rows", rows), ("n", n), ("k", k)] {
            i32_of(what, x)?;
        }
        // SAFETY: gemm_to reads n × k of w and rows × k of a and writes rows × n f16 of c (beta 0);
        // the views were checked to hold that many elements of those types.
        unsafe { self.gpu.gemm_to(rows, n, k, w.addr(), wt, a.addr(), at, c.addr(), GemmType::F16, 0.0) }
    }

    /// The flash prefill attentions, same arguments, guard and accesses: with `grouped` false
    /// `attn_prefill_fa` (64 queries of one head per block of 4 warps sharing 64-key K/V tiles in
    /// shared memory), with `grouped` true `attn_prefill_fg` (session 8: one block per 16 queries ×
    /// kv head, a warp per query head of the GQA group, the tiles staged once for the group). Inputs
    /// and outputs of [`attn_prefill_tc`](Self::attn_prefill_tc); f16 cache, head_dim 32 or 64, GQA
    /// group <= 8.
    #[allow(clippy::too_many_arguments)]
    pub fn attn_prefill_flash(
        &self,
        grouped: bool,
        q: View,
        cache: LayerCache,
        out: View,
        seqs: SeqMeta,
        nseq: usize,
        max_n: usize,
        rows: usize,
    ) -> Result<()> {
        let d = self.d;
        let name = Self::prefill_flash_name(grouped);
        if !Self::prefill_fa_ok(d) {
            return Err(Error::Gpu(format!("{name} needs an f16 cache, head_dim 32 or 64, GQA group <= 8")));
        }
        self.check_prefill_io(&q, &cache, &out, &seqs, nseq, rows)?;
        let (grid, threads) = if grouped {
            let blocks = (u32_of("blocks", max_n.div_ceil(16))?, u32_of("n_kv_heads", d.n_kv)?, u32_of("nseq", nseq)?);
            (blocks, u32_of("threads", 32 * (d.n_heads / d.n_kv))?)
        } else {
            ((u32_of("blocks", max_n.div_ceil(64))?, u32_of("n_heads", d.n_heads)?, u32_of("nseq", nseq)?), 128)
        };
        let (mut qp, mut kc, mut vc, mut op) = (q.addr(), cache.k.addr(), cache.v.addr(), out.addr());
        let (mut s0, mut s1, mut s2, mut s3) = (seqs.slot.addr(), seqs.start.addr(), seqs.row0.addr(), seqs.n.addr());
        // SAFETY: attn_prefill_fa / _fg(q, kc, vc, out, seq_slot, seq_start, seq_row0, seq_n): block
        // (tile, head — fg: kv head, b) reads piece b's metadata, its rows row0..row0+n (< rows) of q
        // (fg: the group's heads) and cache rows 0..start+n (<= max_seq) of its slot (staged by
        // cp.async, rows past the piece's keys zero-filled without a read), writes the same rows of
        // out (as attn_prefill_tc); fg runs 32 · GROUP threads (GROUP = n_heads / n_kv <= 8, checked).
        unsafe { self.gpu.launch(name, grid, threads, 0, &mut args!(qp, kc, vc, op, s0, s1, s2, s3)) }
    }

    /// The kernel [`attn_prefill_flash`](Self::attn_prefill_flash) launches.
    pub fn prefill_flash_name(grouped: bool) -> &'static str {
        if grouped {
            "attn_prefill_fg"
        } else {
            "attn_prefill_fa"
        }
    }

    /// Whether `attn_prefill_fa` is compiled for these dimensions (kernels.cu's guard).
    pub fn prefill_fa_ok(d: &Dims) -> bool {
        d.kv == DType::F16 && d.act == DType::F16 && matches!(d.head_dim, 32 | 64) && d.n_heads / d.n_kv <= 8
    }
}

/// The buffers of the one-row decode megakernel (`mk_step`, mk.rs) that its argument block points to.
pub struct MkBufs<'a> {
    pub dims: &'a super::mk::MkDims,
    /// Packed q/k/v, o, gate+up, down, head chunks (mk_load.rs).
    pub weights: [&'a DevBuf; 5],
    /// (vocab, hidden) f16.
    pub emb: &'a DevBuf,
    /// Attention norms (layers, hidden), ffn norms (layers, hidden), the final norm (hidden), f32.
    pub norms: [&'a DevBuf; 3],
    /// The engine's K and V caches, (layers, slots, n_kv, max_seq, head_dim) f16.
    pub kv: [&'a DevBuf; 2],
    /// The metadata block and the i32 offsets of its token, position and slot rows (sequence 0's).
    pub meta: &'a DevBuf,
    pub meta_rows: [usize; 3],
    /// The launch counter (one i32, 1 before the first step).
    pub epoch: &'a DevBuf,
    pub slots: usize,
    /// RoPE cos, sin (max_seq, head_dim / 2) f32.
    pub rope: [&'a DevBuf; 2],
    /// Tagged words (`MkSizes::tags` u64, zeroed), attention records, the logits (f32, row 0).
    pub tags: &'a DevBuf,
    pub part: &'a DevBuf,
    pub logits: &'a DevBuf,
    /// Ticket and merge counters (zeroed), argmax keys (zeroed), the schedule and its counts.
    pub counters: [&'a DevBuf; 2],
    pub best: &'a DevBuf,
    pub sched: [&'a DevBuf; 2],
    /// The wait-timeout error word (zeroed).
    pub err: &'a DevBuf,
}

/// `mk_step`'s argument block over `b` (kernels_mk.cu `MK_Args`; the tagged words' sub-buffers in
/// its order: hx (layers + 1, hidden), hm (layers, hidden), qt (hidden), kvt (n_kv, 128), aot
/// (hidden), actt (inter)).
pub fn mk_args(b: &MkBufs) -> super::mk::MkArgs {
    let d = b.dims;
    let (h, l, t0, meta) = (d.hidden as u64, d.layers as u64, b.tags.ptr(), b.meta.ptr());
    let (hx, hm) = (t0, t0 + (l + 1) * h * 8);
    let qt = hm + l * h * 8;
    let kvt = qt + h * 8;
    let aot = kvt + d.kv_heads as u64 * 128 * 8;
    let actt = aot + h * 8;
    super::mk::MkArgs {
        wqkv: b.weights[0].ptr(),
        wo: b.weights[1].ptr(),
        wgu: b.weights[2].ptr(),
        wdn: b.weights[3].ptr(),
        whead: b.weights[4].ptr(),
        emb: b.emb.ptr(),
        nattn: b.norms[0].ptr(),
        nffn: b.norms[1].ptr(),
        nfinal: b.norms[2].ptr(),
        kc: b.kv[0].ptr(),
        vc: b.kv[1].ptr(),
        tokp: meta + b.meta_rows[0] as u64 * 4,
        posp: meta + b.meta_rows[1] as u64 * 4,
        slotp: meta + b.meta_rows[2] as u64 * 4,
        epochp: b.epoch.ptr(),
        slots: b.slots as i32,
        rcos: b.rope[0].ptr(),
        rsin: b.rope[1].ptr(),
        hx,
        hm,
        qt,
        kvt,
        aot,
        actt,
        part: b.part.ptr(),
        logits: b.logits.ptr(),
        gctr: b.counters[0].ptr(),
        ctr: b.counters[1].ptr(),
        best: b.best.ptr(),
        sched: b.sched[0].ptr(),
        nsched: b.sched[1].ptr(),
        err: b.err.ptr(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    // Views and checks need a DevBuf (a real allocation), so they are exercised by the GPU tests
    // and `trtforge cuda-check`; the pure parts are checked here.
    use super::*;

    #[test]
    fn byte_ranges_overlap_only_where_they_share_a_byte() {
        assert!(overlap((100, 10), (109, 5)) && overlap((109, 5), (100, 10)) && overlap((100, 10), (90, 11)));
        assert!(!overlap((100, 10), (110, 5)) && !overlap((110, 5), (100, 10)) && !overlap((100, 10), (90, 10)));
        assert!(!overlap((100, 0), (100, 10)) && overlap((105, 0), (100, 10)));
    }

    #[test]
    fn dtype_sizes() {
        assert_eq!(DType::F32.size(), 4);
        assert_eq!(DType::F16.size(), 2);
        assert_eq!(DType::I32.size(), 4);
        assert_eq!(DType::U8.size(), 1);
        assert_eq!(DType::U64.size(), 8);
        assert!(DType::I32.gemm().is_err());
        assert_eq!(DType::F16.gemm().unwrap(), GemmType::F16);
    }

    #[test]
    fn tc_smem_matches_the_kernel_layout() {
        // rows f16 rows of k + 8 elements.
        assert_eq!(tc_smem(8, 2048), 8 * 2056 * 2);
        // tcc_*: one x row, then head_dim-half records of every head's splits and a float weight each
        // (stage_comb).
        assert_eq!(tcc_smem(2048, 32, 64, 10), 2056 * 2 + 32 * 10 * 64 * 2 + 32 * 10 * 4);
        assert!(tcc_smem(2048, 32, 64, 47) <= TCC_SMEM_MAX && tcc_smem(2048, 32, 64, 48) > TCC_SMEM_MAX);
    }

    #[test]
    fn gemv_args_mirror_the_c_struct() {
        // struct GemvArgs (kernels.cu): 13 pointers, int T, int N, const float* part, int nsplit.
        assert_eq!(std::mem::size_of::<GemvArgs>(), 128);
        assert_eq!(std::mem::offset_of!(GemvArgs, t), 104);
        assert_eq!(std::mem::offset_of!(GemvArgs, part), 112);
        assert_eq!(std::mem::offset_of!(GemvArgs, nsplit), 120);
    }
}
