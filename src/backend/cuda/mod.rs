//! Native CUDA engine (`--backend cuda`).
//!
//! The model is the one graph of `model::graph`: [`plan::plan`] traces it and fuses its ops into
//! steps, and each step launches one or a few kernels (NVRTC-compiled from `kernels.cu`, specialized
//! to the model, cached on disk). Decode (one new token per sequence, up to `GEMV_MAX_T` rows) runs
//! fused GEMV kernels in fp32/fp16/int8/int4 and flash-decoding attention, captured in one CUDA
//! graph per batch-size bucket; prefill and larger batches run cuBLAS GEMMs (quantized weights are
//! dequantized to f16 first) and tiled causal attention. The KV cache and every scratch buffer are
//! allocated once at the configured maxima; the decode loop allocates nothing.
//!
//! CUDA libraries are loaded at run time: the binary builds and runs its CPU paths without them,
//! and a missing driver or GPU is an [`Error::Gpu`], never a crash.
pub mod bandwidth;
pub mod gemm_check;
pub mod gpu;
pub mod kernels;
pub mod launch;
pub mod mk;
pub mod mk_load;
pub mod pack;
pub mod paged;
pub mod plan;
pub mod prefill;
pub mod sched;
pub mod timeline;
pub mod wq;
pub mod wq_check;

use super::{check_chunks, Backend, Logits, LogitsOut, SeqChunk};
use crate::backend::cpu::KvQuant;
use crate::error::{Error, Result};
use crate::model::{LlamaConfig, ModelWeights, Param};
use crate::quant::kv::{KvCacheDtype, KvScaleMode};
use crate::quant::QuantizedModel;
use cudarc::driver::CudaGraph;
use gpu::{DevBuf, Gpu, LtScale};
use half::f16;
use kernels::{
    f8g_fits, f8g_kernel, f8g_smem, gemv_mt, gemv_name, tc_name, tcc_name, tcd_name, tcd_smem, tcg3_name, tcg3_shapes,
    tcg4_fits, tcg4_name, tcg4_nt, tcg4_shapes, tcg_name, tcg_shape_capped, tcm_name, tcr1_name, tcr2_name, KernelSpec,
    Role, Tcg3Shape, Tcg4Shape, TcgShape, WeightFormat, F8G_INSTANCES, GEMV_MAX_T, GEMV_MTS, GEMV_THREADS,
    PERSIST_KERNEL, TCD_MAX_COLS, TCG4_KC, TCG4_NTS, TCG4_THREADS, TCG_MAX_KS, TCG_MAX_T, TCG_THREADS, TC_THREADS,
};
use launch::{
    acl_smem, acx_stages, tc_smem, tcc_smem, AttnPtrs, AttnTcBufs, DType, DecodeAttn, Dims, GemvIo, GemvKind, Kernels,
    LayerCache, PersistAttn, QkvRows, Rope, SeqMeta, TcgBufs, View, Weights, ACL_MAXCS, FOLD_REPS_MAX, PERSIST_NSTAMP,
    TCC_NS_MAX, TCC_SMEM_MAX,
};
use pack::HostLinear;
use plan::{LinearStep, Step};
use sched::{MetaLayout, PassMeta};
use std::collections::HashMap;

/// TRTFORGE_ATTN_ROPE (its value, if set): None = the fused RoPE + KV append off, Some(required) = on where the
/// engine has its kernels (required: refused elsewhere). Unset: on (static and paged engines); "0" off; "1" required;
/// anything else refused.
fn attn_rope_switch(v: Option<&str>) -> Result<Option<bool>> {
    match v {
        None => Ok(Some(false)),
        Some("0") => Ok(None),
        Some("1") => Ok(Some(true)),
        Some(v) => Err(Error::Invalid(format!("TRTFORGE_ATTN_ROPE={v:?}: 0 or 1"))),
    }
}

/// A numeric environment switch (None when unset or not a number).
fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Decode passes of this many rows or more run their GEMMs through cuBLASLt (algorithm timed per
/// shape outside graph capture) instead of cublasGemmEx (session 18, docs/cuda.md).
const LT_DECODE_ROWS: usize = 32;
/// Decode steps in one graph of the on-GPU greedy loop of one sequence (`greedy_decode`).
const LOOP_STEPS: usize = 16;

/// Launch shape and state of the persistent decode layer (`persist_layer`).
struct Persist {
    /// Blocks: SMs × resident blocks per SM at `smem` (all co-resident, the grid barriers need it).
    grid: u32,
    /// Dynamic shared memory: GEMV_MAX_T staged rows of the widest K.
    smem: usize,
    /// The grid barriers' arrival counter (one u64, zeroed once).
    bar: DevBuf,
    /// TRTFORGE_PERSIST_STAMPS=1: per layer PERSIST_NSTAMP u64 %globaltimer stamps of the phases,
    /// reported by `profile_decode` (eager) as "persist …" entries.
    stamps: Option<DevBuf>,
    /// Per step: a QKV step followed by its layer's attention, O, gate/up and down steps.
    starts: Vec<bool>,
}

impl Persist {
    /// The persistent layer for `steps` when every decoder layer has the five-step shape and
    /// tensor-core weights (n % 16 == 0) in the kernel's format; None otherwise.
    fn new(gpu: &Gpu, spec: &KernelSpec, steps: &[Step], linears: &[Option<DevLinear>]) -> Result<Option<Persist>> {
        let Some(fmt) = spec.persist_format() else { return Ok(None) };
        let lin_ok = |i: usize, role: Role, layer: usize| match (steps.get(i), linears.get(i)) {
            (Some(Step::Linear(l)), Some(Some(d))) => {
                l.role == role && l.layer == Some(layer) && d.fmt == fmt && d.n % 16 == 0
            }
            _ => false,
        };
        let mut starts = vec![false; steps.len()];
        for (i, st) in steps.iter().enumerate() {
            let Step::Linear(l) = st else { continue };
            if l.role != Role::Qkv {
                continue;
            }
            let Some(layer) = l.layer else { return Ok(None) };
            let attn = matches!(steps.get(i + 1), Some(Step::Attention { layer: a }) if *a == layer);
            if !(lin_ok(i, Role::Qkv, layer)
                && attn
                && lin_ok(i + 2, Role::O, layer)
                && lin_ok(i + 3, Role::GateUp, layer)
                && lin_ok(i + 4, Role::Down, layer))
            {
                return Ok(None);
            }
            starts[i] = true;
        }
        let c = &spec.config;
        let widest = c.hidden_size.max(c.q_dim()).max(c.intermediate_size);
        let smem = tc_smem(GEMV_MAX_T, widest);
        // Always: the kernel's ~30 KB of static shared memory plus `smem` may pass the 48 KB default.
        gpu.allow_smem(PERSIST_KERNEL, smem)?;
        let occ = gpu.occupancy(PERSIST_KERNEL, TC_THREADS, smem)?;
        let bar = gpu.alloc(8)?;
        gpu.memset0(&bar)?;
        let stamps = if std::env::var("TRTFORGE_PERSIST_STAMPS").as_deref() == Ok("1") {
            let b = gpu.alloc(c.num_hidden_layers * PERSIST_NSTAMP * 8)?;
            gpu.memset0(&b)?;
            Some(b)
        } else {
            None
        };
        Ok(Some(Persist { grid: gpu.sms * occ, smem, bar, stamps, starts }))
    }
}

/// The engine's activations are f32 (and so is its KV cache) only for f32 weights; f16 otherwise.
fn f32_acts(f: WeightFormat) -> bool {
    f == WeightFormat::F32
}

/// Engine settings; the KV cache and scratch are sized from these once.
#[derive(Debug, Clone)]
pub struct CudaOptions {
    /// Weight format; activations are f16 (f32 for `F32`), accumulation f32.
    pub precision: WeightFormat,
    pub max_batch: usize,
    pub max_seq: usize,
    /// Rows of one internal pass; longer requests are split into several passes.
    pub max_tokens: usize,
    /// Capture decode steps in CUDA graphs.
    pub graphs: bool,
    pub device: usize,
    /// A paged KV cache of this many blocks (see [`paged`]) instead of `max_batch` contiguous
    /// caches of `max_seq`; `max_batch` then bounds the sequences of one step.
    pub paged_blocks: Option<usize>,
    /// An 8-bit KV cache (int8 / fp8 with static per-(layer, K|V, head) scales, what the CPU
    /// reference's `KvQuant` computes); None or fp16: the activation float type.
    pub kv: Option<KvQuant>,
}

impl CudaOptions {
    pub fn new(precision: WeightFormat, max_batch: usize, max_seq: usize) -> Self {
        CudaOptions {
            precision,
            max_batch,
            max_seq,
            max_tokens: 2048,
            graphs: true,
            device: 0,
            paged_blocks: None,
            kv: None,
        }
    }

    /// The KV cache element type these options ask for.
    pub fn kv_dtype(&self) -> KvCacheDtype {
        self.kv.as_ref().map_or(KvCacheDtype::Fp16, |k| k.dtype)
    }
}

/// Checks an 8-bit KV cache request against what the engine runs: static per-head scales of the
/// model's (layers, kv heads), f16 activations. Returns the scales as the kernels' table
/// (layers, 2 (K, V), kv heads) f32; None for an fp16 cache.
pub fn kv_scale_table(c: &LlamaConfig, precision: WeightFormat, kv: Option<&KvQuant>) -> Result<Option<Vec<f32>>> {
    let Some(kv) = kv.filter(|k| k.dtype.quantized()) else { return Ok(None) };
    let what = kv.dtype.as_str();
    if kv.mode == KvScaleMode::Dynamic {
        return Err(Error::Unsupported(format!(
            "the CUDA engine's {what} KV cache uses calibrated per-head scales; dynamic per-block scales \
             (kv_scales: dynamic) run on --backend cpu or ort"
        )));
    }
    if precision == WeightFormat::F32 {
        return Err(Error::Unsupported(format!("an {what} KV cache needs f16 activations, not fp32 mode")));
    }
    let g = c.num_attention_heads / c.num_key_value_heads;
    if c.head_dim % 32 != 0 || g > 8 {
        return Err(Error::Unsupported(format!(
            "the CUDA engine reads an {what} KV cache with its tensor-core attention, which needs head_dim % 32 == 0 \
             and at most 8 query heads per KV head (this model: head_dim {}, {g})",
            c.head_dim
        )));
    }
    let s = kv
        .scales
        .as_ref()
        .ok_or_else(|| Error::Invalid(format!("an {what} KV cache with calibrated scales needs the scales")))?;
    let (l, h) = (c.num_hidden_layers, c.num_key_value_heads);
    if s.k.len() != l || s.v.len() != l || s.k.iter().chain(&s.v).any(|x| x.len() != h) {
        return Err(Error::Invalid(format!("KV scales must be ({l} layers, {h} heads) for K and V")));
    }
    let mut t: Vec<f32> = Vec::with_capacity(2 * l * h);
    for layer in 0..l {
        t.extend(&s.k[layer]);
        t.extend(&s.v[layer]);
    }
    if let Some(x) = t.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
        return Err(Error::Invalid(format!("KV scale {x} is not a positive finite number")));
    }
    Ok(Some(t))
}

/// The signs table of a rotated 8-bit cache (`kv_rot`, `c_kvrot`): (layers, head_dim) f32; None
/// without a rotation. The warp transform needs head_dim a power of two and a multiple of 32, and
/// one block holds a kv head's k and its q heads (a warp each: at most 31 q heads per kv head).
pub fn kv_rot_table(c: &LlamaConfig, kv: Option<&KvQuant>) -> Result<Option<Vec<f32>>> {
    let Some(r) = kv.filter(|k| k.dtype.quantized()).and_then(|k| k.rotate.as_ref()) else { return Ok(None) };
    if let Some(m) = r.mismatch(c.num_hidden_layers, c.head_dim) {
        return Err(Error::Invalid(m));
    }
    if c.head_dim % 32 != 0 {
        return Err(Error::Unsupported(format!(
            "the CUDA engine rotates K (kv_rotate) one warp per head: head_dim must be a multiple of 32, not {}",
            c.head_dim
        )));
    }
    let g = c.num_attention_heads / c.num_key_value_heads.max(1);
    if g > 31 {
        return Err(Error::Unsupported(format!(
            "the CUDA engine rotates a kv head's k and its q heads in one block of a warp each: at most 31 q heads \
             per kv head, not {g} (run a rotated cache on --backend cpu or ort)"
        )));
    }
    Ok(Some((0..c.num_hidden_layers).flat_map(|l| r.signs(l).to_vec()).collect()))
}

/// The megakernel's state (`TRTFORGE_MK=1`): the model's weights packed into its chunks, its
/// tagged words, records, counters and schedule, its launch counter (epochs start at 1: tag 0, the
/// zeroed words, is never current), and its argument block pointing at the engine's embedding, KV
/// cache, RoPE tables, metadata rows (token, position, slot of sequence 0) and logits.
#[allow(clippy::too_many_arguments)]
fn mk_state(
    gpu: &Gpu,
    w: &ModelWeights,
    cfg: &LlamaConfig,
    slots: usize,
    embed: &DevBuf,
    kcache: &DevBuf,
    vcache: &DevBuf,
    rope_cos: &DevBuf,
    rope_sin: &DevBuf,
    s: &Scratch,
    layout: MetaLayout,
) -> Result<MkState> {
    let unsupported = |m: String| Error::Unsupported(format!("TRTFORGE_MK=1: {m}"));
    let d = mk_load::dims_of(cfg);
    let grid = gpu.sms as usize;
    let p = mk_load::pack_model(w).map_err(unsupported)?;
    let z = mk::MkSizes::of(&d, grid);
    let (sched, nsched) = mk::build_schedule(&d, grid, mk::ACH, 32768.0).map_err(unsupported)?;
    let per_layer =
        |f: fn(usize) -> Param| -> Vec<f32> { (0..d.layers).flat_map(|l| w.get(f(l)).data.iter().copied()).collect() };
    let zeroed = |bytes: usize| -> Result<DevBuf> {
        let b = gpu.alloc(bytes)?;
        gpu.memset0(&b)?;
        Ok(b)
    };
    let (wqkv, wo, wgu, wdn, whead) =
        (gpu.upload(&p.qkv)?, gpu.upload(&p.o)?, gpu.upload(&p.gate_up)?, gpu.upload(&p.down)?, gpu.upload(&p.head)?);
    let (nattn, nffn) = (gpu.upload(&per_layer(Param::AttnNorm))?, gpu.upload(&per_layer(Param::FfnNorm))?);
    let nfinal = gpu.upload(&w.get(Param::FinalNorm).data)?;
    let tags = zeroed(z.tags * 8)?;
    let part = gpu.alloc(z.part * 4)?;
    let (gctr, ctr, best, err) = (zeroed(z.gctr * 4)?, zeroed(z.ctr * 4)?, zeroed(z.best * 8)?, zeroed(4)?);
    let (sched_d, nsched_d) = (gpu.upload(&sched)?, gpu.upload(&nsched)?);
    let epoch = gpu.upload(&[1i32])?;
    gpu.allow_smem("mk_step", d.smem())?;
    let args = launch::mk_args(&launch::MkBufs {
        dims: &d,
        weights: [&wqkv, &wo, &wgu, &wdn, &whead],
        emb: embed,
        norms: [&nattn, &nffn, &nfinal],
        kv: [kcache, vcache],
        meta: &s.meta,
        meta_rows: [layout.tokens(), layout.row_pos(), layout.row_slot()],
        epoch: &epoch,
        slots,
        rope: [rope_cos, rope_sin],
        tags: &tags,
        part: &part,
        logits: &s.logits,
        counters: [&gctr, &ctr],
        best: &best,
        sched: [&sched_d, &nsched_d],
        err: &err,
    });
    let bufs = vec![wqkv, wo, wgu, wdn, whead, nattn, nffn, nfinal, tags, part, gctr, ctr, err, sched_d, nsched_d];
    Ok(MkState { args, grid: grid as u32, smem: d.smem() as u32, epoch, best, _bufs: bufs })
}

/// A linear layer on the device, in the kernels' layout.
struct DevLinear {
    fmt: WeightFormat,
    n: usize,
    k: usize,
    data: DevBuf,
    scales: Option<DevBuf>,
    /// Quantized weights: their f16 dequantization (`f16(q · s)`, the DequantizeLinear values), made
    /// once at load for the GEMM path (prefill, batches above GEMV_MAX_T) so it reads f16 weights
    /// like an fp16 engine instead of dequantizing every layer every pass. TRTFORGE_DEQUANT_ONCE=0
    /// keeps only the codes (and dequantizes per pass into a scratch buffer, as before).
    shadow: Option<DevBuf>,
    /// Launch shape of the batched tensor-core GEMM (`tcg_*`) for decode passes of
    /// GEMV_MAX_T < rows <= TCG_MAX_T; None where it does not apply.
    tcg: Option<TcgShape>,
    /// Launch shape of the session-6 batched decode GEMM (`tcg3_*`, TRTFORGE_TCG=3) for the same
    /// row range; None where it does not apply or is off.
    tcg3: Option<Tcg3Shape>,
    /// The session-7 wgmma GEMM (`tcg4_*`, TRTFORGE_TCG=4 on sm_90a) for the same row range: its
    /// packed f16 copy of the weights (kernels.cu `tcg4_pack`) and the launch shape per row padding
    /// (TCG4_NTS order); None where it does not apply or is off.
    tcg4: Option<(DevBuf, Vec<Tcg4Shape>)>,
    /// fp8 weights in the GEMM path through cuBLASLt's FP8 GEMM (W8A8, `TRTFORGE_FP8_GEMM=1`);
    /// None: the f16 copy (`shadow`) instead.
    fp8: Option<Fp8Gemm>,
    /// f16 down weights of an engine with a `tcd_*` instance (`TRTFORGE_GUD=1`): a second copy in
    /// column-tile order, (k / 8, n, 8) — the 8 h columns of each gate/up tile contiguous over every
    /// output row — so each fused block streams its down weights as one contiguous range.
    fd: Option<DevBuf>,
    /// int8 / int4 g128 / fp8 layer linears of an engine whose module holds the quantized decode GEMM
    /// (`gpu.wq`: cc 9.0 unless TRTFORGE_WQ=0), of the roles it runs (`wq_roles_from_env`): their codes in wq.rs's
    /// pack for its 9..=64-row decode passes.
    wq: Option<WqLinear>,
}

/// A layer linear's name in the diagnostics' role lists (`qkv`, `o`, `gateup`, `down`); `var` names the variable for the
/// error.
fn layer_role(name: &str, var: &str) -> Result<Role> {
    match name.trim() {
        "qkv" => Ok(Role::Qkv),
        "o" => Ok(Role::O),
        "gateup" => Ok(Role::GateUp),
        "down" => Ok(Role::Down),
        x => Err(Error::Invalid(format!("{var}: {x:?} is not one of qkv, o, gateup, down"))),
    }
}

/// The layer linears that take the quantized decode GEMM (wq.rs) and its mode: gate/up and down by default, all four
/// with `TRTFORGE_WQ=1`; `TRTFORGE_WQ_ROLES=qkv,o,gateup,down` (session 38, a diagnostic) names them, so that a bench
/// can time each one's share of a step.
fn wq_roles_from_env() -> Result<(wq::Mode, Vec<Role>)> {
    let mode = wq::mode()?;
    let all = match mode {
        wq::Mode::All => vec![Role::Qkv, Role::O, Role::GateUp, Role::Down],
        _ => vec![Role::GateUp, Role::Down],
    };
    Ok((mode, roles_from_env("TRTFORGE_WQ_ROLES")?.unwrap_or(all)))
}

/// The layer linears a role-list variable names (`qkv,o,gateup,down`); None where it is unset.
fn roles_from_env(var: &str) -> Result<Option<Vec<Role>>> {
    let Ok(v) = std::env::var(var) else { return Ok(None) };
    v.split(',').map(|r| layer_role(r, var)).collect::<Result<_>>().map(Some)
}

/// `TRTFORGE_WQ_SHAPE=o:8x3,down:8x4` (session 38, a diagnostic): a role's launch shape for the quantized decode GEMM —
/// K slices (the cluster size, 1..=8) × ring slots (`wq::SLOTS`, 2..=6) — instead of `wq::shape`'s, so that one
/// call can sweep shapes without a rebuild (the kernels are the same).
fn wq_shapes_from_env() -> Result<Vec<(Role, (usize, usize))>> {
    const VAR: &str = "TRTFORGE_WQ_SHAPE";
    let Ok(v) = std::env::var(VAR) else { return Ok(vec![]) };
    v.split(',')
        .map(|item| {
            let bad = || Error::Invalid(format!("{VAR}: {item:?} is not ROLE:SLICESxSLOTS (e.g. o:8x3)"));
            let (role, shape) = item.split_once(':').ok_or_else(bad)?;
            let (sl, st) = shape.trim().split_once('x').ok_or_else(bad)?;
            let (sl, st): (usize, usize) = (sl.parse().map_err(|_| bad())?, st.parse().map_err(|_| bad())?);
            if !(1..=8).contains(&sl) || !wq::SLOTS.contains(&st) {
                let (a, b) = (wq::SLOTS.start(), wq::SLOTS.end());
                return Err(Error::Invalid(format!("{VAR}: {item:?}: slices 1..=8, slots {a}..={b}")));
            }
            Ok((layer_role(role, VAR)?, (sl, st)))
        })
        .collect()
}

/// A linear's operands for the quantized decode GEMM (wq.rs): the packed codes, int4's packed group scales
/// (int8 / fp8 use the linear's row scales), the launch shape (K slices, ring slots).
struct WqLinear {
    data: DevBuf,
    scales: Option<DevBuf>,
    /// The copies a stage (`wq::copy_mode`; with `wq::CM_INLINE`, int4's scales are inside `data`).
    cm: i32,
    shape: (usize, usize),
    /// The fewest rows of a decode pass that take it (`wq::min_rows`).
    min_rows: usize,
}

/// What the FP8 GEMM of one fp8 linear needs beyond its E4M3 codes (issue #15).
struct Fp8Gemm {
    /// The per-output-row weight scales as f32 (cuBLASLt's per-channel scale vector), n floats.
    wscale: DevBuf,
    /// The engine dir's static per-tensor input scale (one f32; ONNX Runtime / TensorRT's QDQ
    /// scale), None: dynamic per-row scales (max |x| / 448 of each row).
    sstat: Option<DevBuf>,
}

/// `TRTFORGE_FP8_GEMM=1`: fp8 engines run the GEMM path (prefill, decode passes above GEMV_MAX_T
/// rows) as W8A8 through cuBLASLt's FP8 GEMM instead of reading an f16 copy of the weights; on cc
/// 9.0 its 9..=64-row passes run the session-28 f8g kernels (`gpu.f8g`, `kernels::f8g_wanted`).
pub fn fp8_gemm_requested() -> bool {
    std::env::var("TRTFORGE_FP8_GEMM").as_deref() == Ok("1")
}

impl DevLinear {
    fn weights(&self) -> Weights<'_> {
        Weights { fmt: self.fmt, n: self.n, k: self.k, data: &self.data, scales: self.scales.as_ref() }
    }
}

/// Device scratch, sized for `max_tokens` rows.
struct Scratch {
    h: DevBuf,            // (max_tokens, hidden) f32 residual stream
    hsel: DevBuf,         // (max_tokens, hidden) f32 selected rows
    xact: DevBuf,         // (max_tokens, max(hidden, q_dim, inter)) act: GEMM/GEMV inputs
    q: DevBuf,            // (max_tokens, q_dim) f32
    y: DevBuf,            // (max_tokens, max(qkv, 2·inter)) f32 GEMM outputs
    logits: DevBuf,       // (max_tokens, vocab) f32
    wdeq: Option<DevBuf>, // (largest linear) f16 dequantized weights for GEMMs
    /// FP8 GEMM inputs: (max_tokens, widest) E4M3 codes and (max_tokens) f32 row scales.
    xq: Option<(DevBuf, DevBuf)>,
    part: DevBuf,     // (max_seqs, n_heads, nsplit, head_dim + 4) f32 attention partials
    counters: DevBuf, // (max_seqs, n_kv) i32
    meta: DevBuf,     // MetaLayout i32
    next: DevBuf,     // (max_seqs) i32 sampled tokens
    am_keys: DevBuf,  // (max_seqs) u64 argmax_mb keys (zero between launches)
    am_cnt: DevBuf,   // (max_seqs) i32 argmax_mb block counters (zero between launches)
    hist: DevBuf,     // (max_seq, max_seqs) i32 tokens of on-GPU greedy loops
    hist_ctr: DevBuf, // (1) i32 the next row of hist (hist_put)
    qa: DevBuf,       // (max_tokens, q_dim) act: q for the tensor-core prefill attention
    /// Tensor-core prefill attention: scores (n_heads, n, total) f32 and probabilities (same) act,
    /// for n <= total <= cache length; None when that would exceed `MAX_SCORE_BYTES`.
    scores: Option<(DevBuf, DevBuf)>,
    ptrs: DevBuf, // (layers, slots, 6, n_heads) u64 pointer arrays of the batched GEMMs
}

/// Largest score buffer the tensor-core prefill attention may allocate; beyond it the tiled
/// CUDA-core kernel runs instead.
const MAX_SCORE_BYTES: usize = 1 << 30;

/// Ring stages per warp of `attn_decode_cg`: 8 × 4 warps × 16 keys = 512 keys of K and V (128 KB for
/// head_dim 64, f16) issued before griddepcontrol.wait. Session 10 (H200, bs8, 4 splits): 8 stages
/// 1.6–3.5 % faster than the engine default at every format; 2 stages (most tiles loaded after the
/// wait) 2–4 % slower.
const CG_STAGES: usize = 8;

/// attn_decode_cg's splits at one row with the combine in the o GEMV (`ocomb`): one 16-key tile per warp
/// (4 warps) at `max_seq`, at most CG1_MAX (every o block copies and combines all splits' records, and
/// 10 splits keep 5,120 positions in the 8-stage rings) and `nsplit`; the Attention step lowers it to
/// what fits one wave and the tcc_* shared memory. Session 11 (H200, SmolLM2 shape bs1, a 648-position
/// engine, same process): 4 splits 2,273 tok/s, 8 2,344, 10 2,356 / 2,367, 11 2,266, 12 2,263 / 2,282.
fn cg1_splits(max_seq: usize, nsplit: usize) -> usize {
    max_seq.div_ceil(4 * 16).clamp(1, CG1_MAX).min(nsplit.min(64))
}
const CG1_MAX: usize = 10;

/// Splits per (row, kv head) of `attn_decode_cg`: 4 (measured best of 1 / 2 / 4 at a 512–640
/// context, bs8, session 10), more where a longer cache would not fit the splits' rings
/// (4 × CG_STAGES × 4 warps × 16 = 2,048 positions before the ring streams), at most `nsplit`. The
/// Attention step lowers it where rows × kv heads × splits would not be resident at once (one
/// 141 KB block per SM: TinyLlama bs8 is 128 blocks on 132 SMs; a model with 8 kv heads takes 2).
fn cg_splits(max_seq: usize, nsplit: usize) -> usize {
    max_seq.div_ceil(CG_STAGES * 4 * 16).max(4).min(nsplit.min(64)).max(1)
}

/// The bs64 f16 decode attention by default (session 7): `None` = the session-5 `attn_decode_cl`;
/// `Some(4)` = `attn_decode_cx` (measured 39,891 vs `attn_decode_cl` 39,179 tok/s in branch attn7's call),
/// `Some(8)` = `attn_decode_cx8`: the default since the session-7 final lease (fp16 bs64 42,081 → 43,294
/// tok/s with the merged main, int4 42,352 → 43,237, fp8 42,133 → 43,202; in the same call its
/// multi-tile path passed `TRTFORGE_ATTN=cx8all TRTFORGE_ATTN_CS=1 TRTFORGE_CHECKS=prefill` (one block
/// walks each whole (row, kv head) of 497- / 200-token prompts) and `TRTFORGE_ATTN=cx8all
/// TRTFORGE_CHECKS=attn` 15/15; docs/benchmarks/2026-11-30-h200-session7). `TRTFORGE_ATTN=cl4` runs
/// the session-5 kernel.
const ACX_DEFAULT: Option<usize> = Some(8);

/// 8-bit KV caches (int8 / fp8) decode bs64 passes with `attn_decode_cl8` (session 12; the KV_Q path of
/// the cluster kernels, one block of 8 warps per (row, kv head)) instead of `attn_decode_tc`.
const KV8_CL8: bool = true;

pub struct CudaBackend {
    cfg: LlamaConfig,
    opts: CudaOptions,
    gpu: Gpu,
    spec: KernelSpec,
    steps: Vec<Step>,
    linears: Vec<Option<DevLinear>>, // per step
    norms: HashMap<Param, DevBuf>,   // (hidden) f32
    embed: DevBuf,                   // (vocab, hidden) f16 or f32
    kcache: DevBuf, // (layers, slots, n_kv, max_seq, head_dim), or paged (layers, blocks, 16, n_kv, head_dim)
    vcache: DevBuf,
    /// 8-bit KV cache: its per-head scales (layers, 2, n_kv) f32, which the kernels read through
    /// `c_kvs` (kept alive here).
    kv_scales: Option<DevBuf>,
    /// K rotation of an 8-bit cache (`kv_rot`): the signs (layers, head_dim) f32 (`c_kvrot`) and the
    /// parked k rows (max_tokens, kv_dim) f32 (`c_kstage`), kept alive here.
    kv_rot: Option<(DevBuf, DevBuf, Option<DevBuf>)>,
    /// Paged KV: block tables (max_batch + 1 rows of `tbl_stride` i32; the last row, for padded
    /// decode rows, points at the dummy block) and per-row sampling settings (8 i32 per row).
    tables: Option<(DevBuf, DevBuf)>,
    tbl_stride: usize,
    rope_cos: DevBuf, // (max_seq, head_dim/2) f32
    rope_sin: DevBuf,
    s: Scratch,
    layout: MetaLayout,
    lens: Vec<usize>,
    graphs: HashMap<usize, CudaGraph>,
    /// The on-GPU greedy loop's graph of one megakernel sequence (bucket 1, `TRTFORGE_MK=1`): [`LOOP_STEPS`] decode steps.
    loop_graph: Option<CudaGraph>,
    grid_cache: HashMap<(String, usize), u32>,
    /// Decode GEMVs on tensor cores (`tc_*` kernels: sm_80+, f16 activations; TRTFORGE_TC=0 turns
    /// them off).
    use_tc: bool,
    /// Decode attention kernel: `attn_decode_cl` (sm_90, f16 caches; used where one block per
    /// (row, kv head) fills the device, else `attn_decode_tc` — see `acl_forced`; session 7:
    /// `attn_decode_cx` / `cx8` there with TRTFORGE_ATTN=cx / cx8 or `ACX_DEFAULT`, see `acl_fb`), `attn_decode_tc`
    /// (tensor cores, the default elsewhere; TRTFORGE_ATTN=tc1 everywhere), `attn_decode` (CUDA cores,
    /// TRTFORGE_ATTN=v2) or `attn_decode_v1` (TRTFORGE_ATTN=v1, the previous one-chunk-per-block
    /// kernel), for comparison.
    attn_kernel: DecodeAttn,
    /// `attn_decode_cl`: resident blocks on the device (SMs × occupancy) and the largest cluster.
    acl_slots: usize,
    acl_csmax: usize,
    /// TRTFORGE_ATTN_CSF=n (session 54, diagnostic): every decode pass on `attn_kernel` (attn_decode_cl / cx) runs each
    /// (kv head, row) as a cluster of n blocks, whatever the batch (a second wave allowed), keeping the kernel.
    acl_csf: Option<usize>,
    /// TRTFORGE_ATTN_REPS=n (session 55, diagnostic): a decode pass launches its decode attention n times (0..=4;
    /// 0 skips it: the output is then wrong), to measure what one launch costs inside the step.
    attn_reps: usize,
    /// Decode passes on the GEMM path whose attention is attn_decode_cx8 run attn_decode_cx8r[h] instead, RoPE and
    /// the KV append folded into it (no `rope_append` launch); head_dim % 64 == 0, an f16 or 8-bit cache without K
    /// rotation, sm_90. On in engines that have those kernels (session 59: +0.6 % fp16, +1.1 % fp8 + int8 KV at
    /// bs64, H100; paged engines since session 60, after their TinyLlama-shape checks passed with it);
    /// TRTFORGE_ATTN_ROPE=0 turns it off, =1 requires it (refused where it cannot run).
    attn_rope: bool,
    /// TRTFORGE_ATTN=cl: attn_decode_cl at every batch size (else only where one block per
    /// (row, kv head) fills the device, attn_decode_tc below).
    acl_forced: bool,
    /// What a cluster launch (cs > 1) runs where `attn_kernel` is `attn_decode_cx` and not forced.
    acl_fb: DecodeAttn,
    /// `attn_decode_cg` (the bs1 switches `cg` / `mcg`, decode passes of up to GEMV_MAX_T rows)
    /// where the cluster kernels are compiled (sm_90), with its ring stages (TRTFORGE_CG_STAGES,
    /// default CG_STAGES), and its resident blocks on the device (SMs × occupancy).
    acg: Option<(DecodeAttn, usize)>,
    /// Batched decode passes (GEMV_MAX_T < rows <= TCG_MAX_T) through the `tcg_*` tensor-core
    /// GEMMs with fused epilogues instead of cuBLAS + rope_append/swiglu. Opt-in (TRTFORGE_TCG=1)
    /// until it beats cuBLAS at bs64 (docs/cuda.md, session 3).
    use_tcg: bool,
    /// Prefill attention by `attn_prefill_tc` (flash attention on tensor cores: online softmax, no
    /// score matrix) where the decode kernel `attn_decode_tc` exists; TRTFORGE_PREFILL_ATTN=cublas
    /// keeps the cuBLAS QKᵀ → softmax → PV path.
    prefill_fa: bool,
    /// TRTFORGE_GEMM=lt: the whole GEMM path (prefill, decode passes above GEMV_MAX_T rows) through
    /// cuBLASLt with the algorithm timed per shape at first use (`gpu::Lt`), not only the decode
    /// passes of `gemm_lt_decode`.
    gemm_lt: bool,
    /// Decode passes of at least this many rows through cuBLASLt (the static engine's default
    /// [`LT_DECODE_ROWS`]; TRTFORGE_LT_DECODE_ROWS=N to measure another threshold; usize::MAX: off,
    /// as with TRTFORGE_GEMM=cublas).
    gemm_lt_decode: usize,
    /// Paged engines: non-decode passes run their GEMMs at `sched::gemm_rows` rows (serve;
    /// TRTFORGE_SERVE_GEMM_PAD=0 runs the exact row count).
    gemm_pad: bool,
    /// With `gemm_lt`: qkv and gate/up write their GEMM output as f16 (rope_append_h / swiglu_h read
    /// it) instead of f32 (TRTFORGE_GEMM_F16OUT=1).
    gemm_f16out: bool,
    /// Some fp8 linear runs the FP8 GEMM (`DevLinear::fp8`) in the GEMM path.
    fp8_gemm: bool,
    /// How its scales are applied: `OuterVec` inside cuBLASLt (per-channel weight, per-row input
    /// scale vectors), else `None`: an unscaled FP8 GEMM into y, then `fp8_rescale`.
    fp8_scales: LtScale,
    /// tcg partial sums (f32, the largest `TcgShape::ws_floats`) and per-tile counters (zero
    /// between launches; each GEMM's last warps reset theirs).
    tcg_ws: Option<DevBuf>,
    tcg_cnt: Option<DevBuf>,
    /// Model and buffer dimensions the launch wrappers check sizes against.
    dims: Dims,
    /// Decode passes of <= GEMV_MAX_T rows run each layer as one `persist_layer` launch
    /// (TRTFORGE_PERSIST=1; issue #11).
    persist: Option<Persist>,
    /// Bytes of weights one decode step reads (all linears + LM head).
    pub weight_bytes: usize,
    /// When set, `run_pass` times every step (synchronizing) and adds ms per step kind here.
    profile: Option<Vec<(String, f64)>>,
    /// Session-6 prefill kernels (`prefill::PrefillOpts`, environment switches).
    pf: prefill::PrefillOpts,
    /// When set, `run_pass` records events around each launch without synchronizing
    /// (`profile_prefill_fine`).
    fine: std::cell::RefCell<Option<prefill::FineProf>>,
    /// Prefill passes replayed from CUDA graphs (`TRTFORGE_PREFILL_GRAPH=1`): per pass shape, the
    /// times it was seen and its graph once captured (`prefill::PassKey`).
    pf_graphs: HashMap<prefill::PassKey, (usize, Option<CudaGraph>)>,
    /// (slot, start, row0, n) of each sequence of the pass being run.
    pass_seqs: Vec<(usize, usize, usize, usize)>,
    /// Leading one-token pieces of a non-decode pass that run the decode attention (paged steps
    /// that mix decodes with prefill chunks put the decodes first); 0 otherwise.
    lead_decode: usize,
    /// bs1 A/B switches (session 6, `timeline::Bs1Knobs`; `TRTFORGE_BS1`, bench's `TRTFORGE_BS1_AB`).
    bs1: timeline::Bs1Knobs,
    /// What `bs1` is without TRTFORGE_BS1 (`timeline::bs1_default`).
    bs1_default: timeline::Bs1Knobs,
    /// Most splits a folded decode attention may store for the `tcc_*` o GEMV (its shared memory,
    /// `TCC_SMEM_MAX`); 0 where the engine has no `tcc_*` instance.
    tcc_ns_max: usize,
    /// `tcd_*` (session 29, `TRTFORGE_GUD=1`): the one-row gate/up + down launch's blocks and two
    /// zeroed i32 counters; None where the engine has no `tcd_*` instance.
    gud: Option<(u32, DevBuf)>,
    /// `TRTFORGE_MK=1` (opt-in, session 33): the one-row decode megakernel's state;
    /// None where the engine does not get it (`KernelSpec::mk_wanted`, cc 9.0, `mk::max_len`).
    mk: Option<MkState>,
}

/// The one-row decode megakernel's buffers (mk.rs, mk_load.rs): its argument block, its grid (one
/// block an SM), its launch counter, and the buffers the block points to (kept alive here).
struct MkState {
    args: mk::MkArgs,
    grid: u32,
    /// `mk_step`'s dynamic shared memory (`MkDims::smem`).
    smem: u32,
    epoch: DevBuf,
    best: DevBuf,
    _bufs: Vec<DevBuf>,
}

fn step_label(s: &Step) -> String {
    match s {
        Step::Embed => "embed".into(),
        Step::Select => "select".into(),
        Step::Attention { .. } => "attention".into(),
        Step::Linear(l) => l.role.tag().into(),
    }
}

/// Builds the fused host weights of a linear step in the kernels' layout: quantized roles from the
/// stored codes and scales of `q` (repacked, never re-rounded), float roles from `w`.
fn host_linear(w: &ModelWeights, q: Option<&QuantizedModel>, st: &LinearStep, fmt: WeightFormat) -> Result<HostLinear> {
    let c = &w.config;
    let parts: Vec<HostLinear> = st
        .params
        .iter()
        .map(|&p| match fmt {
            WeightFormat::F32 | WeightFormat::F16 => {
                let t = w.get(p);
                Ok(HostLinear::from_float(&t.data, t.rows(), t.cols(), fmt == WeightFormat::F16))
            }
            WeightFormat::I8 | WeightFormat::I4 { .. } | WeightFormat::F8 => {
                let name = crate::quant::param_name(p);
                let ql = q
                    .and_then(|q| q.get(p))
                    .ok_or_else(|| Error::Invalid(format!("{} engine: no quantized weight for {name}", fmt.tag())))?;
                let stored = ql.format;
                if stored != fmt {
                    return Err(Error::Invalid(format!(
                        "{name} is stored as {} (group {:?}), the CUDA engine was asked for {:?}",
                        ql.format.name(),
                        ql.format.group_size(),
                        fmt
                    )));
                }
                HostLinear::from_quantized(ql).map_err(|m| Error::Unsupported(format!("CUDA engine, {name}: {m}")))
            }
        })
        .collect::<Result<_>>()?;
    let cat = HostLinear::concat_rows(&parts);
    Ok(match st.role {
        Role::Qkv => cat.permute_rows(&pack::qkv_row_order(c.num_attention_heads, c.num_key_value_heads, c.head_dim)),
        Role::GateUp => cat.permute_rows(&pack::gateup_row_order(c.intermediate_size)),
        _ => cat,
    })
}

/// The quantized weights a preset (or any float model) runs with at `p`: the decoder linears through
/// `quant::rtn`, exactly as `trtforge convert` quantizes them without calibration (int4 groups padded
/// where the group does not divide an input dim; fp8: E4M3 with per-output-channel scales,
/// `quant::fp8::quantize_weight`, the weights of an fp8 RTN engine). `None` for float precisions.
pub fn quantize_rtn(w: &ModelWeights, p: WeightFormat) -> Result<Option<QuantizedModel>> {
    let format = match p {
        WeightFormat::F32 | WeightFormat::F16 => return Ok(None),
        q => q,
    };
    let params = crate::quant::decoder_linears(&w.config);
    Ok(Some(crate::quant::rtn::quantize_params(w, &params, format, true, None)?))
}

impl CudaBackend {
    /// Uploads `w` (its decoder linears quantized by [`quantize_rtn`] when the precision asks) and
    /// allocates the KV cache for `opts.max_batch` sequences of `opts.max_seq` tokens.
    pub fn new(w: &ModelWeights, opts: CudaOptions) -> Result<Self> {
        let q = quantize_rtn(w, opts.precision)?;
        Self::with_quantized(w, q.as_ref(), opts)
    }

    /// Like [`new`](Self::new) with the decoder linears' stored codes and scales `q` (an engine
    /// directory's, see `quant::load_engine_weights`), repacked into the kernels' layout as they are.
    /// `w` supplies the embedding, norms and LM head (which stay float). Quantized precisions need `q`.
    pub fn with_quantized(w: &ModelWeights, q: Option<&QuantizedModel>, opts: CudaOptions) -> Result<Self> {
        let cfg = w.config.clone();
        if opts.max_batch == 0 || opts.max_seq == 0 {
            return Err(Error::Invalid("max_batch and max_seq must be at least 1".into()));
        }
        if opts.max_seq > cfg.max_position_embeddings {
            return Err(Error::Invalid(format!(
                "{} tokens requested, but the model supports a context of {} tokens",
                opts.max_seq, cfg.max_position_embeddings
            )));
        }
        let mut opts = opts;
        opts.max_tokens = opts.max_tokens.max(opts.max_batch + 1);
        let steps = plan::plan(&cfg)?;
        let fmt = opts.precision;
        // The LM head stays float (as in an engine dir): f16, or f32 in fp32 mode.
        let float_fmt = if f32_acts(fmt) { WeightFormat::F32 } else { WeightFormat::F16 };
        let role_fmt = |r: Role| if r == Role::Head { float_fmt } else { fmt };
        let formats: Vec<(Role, WeightFormat)> = Role::ALL.iter().map(|&r| (r, role_fmt(r))).collect();
        // Kernels are specialized on the cache length: round it up so that engines of nearby sizes
        // share one compiled (and cached) module.
        let seq_cap = opts.max_seq.next_multiple_of(256).min(cfg.max_position_embeddings).max(opts.max_seq);
        // TRTFORGE_KV=paged: the static engine on the paged kernels with identity block tables (slot
        // s owns blocks s·B .. s·B + B - 1), to measure what the table costs the static path.
        let identity = opts.paged_blocks.is_none() && std::env::var("TRTFORGE_KV").as_deref() == Ok("paged");
        if identity {
            opts.paged_blocks = Some(opts.max_batch * seq_cap.div_ceil(paged::BLOCK));
        }
        let spec = KernelSpec {
            config: cfg.clone(),
            max_seq: seq_cap,
            act_f32: f32_acts(opts.precision),
            kv_f32: f32_acts(opts.precision),
            formats,
            gemv_mts: GEMV_MTS.to_vec(),
            paged: opts.paged_blocks.is_some(),
            kv_cache: opts.kv_dtype(),
            kv_rot: opts.kv.as_ref().is_some_and(|k| k.dtype.quantized() && k.rotate.is_some()),
        };
        let kv_table = kv_scale_table(&cfg, opts.precision, opts.kv.as_ref())?;
        let kv_rot_table = kv_rot_table(&cfg, opts.kv.as_ref())?;
        spec.validate().map_err(|m| Error::Unsupported(format!("CUDA engine, {}: {m}", opts.precision.label())))?;
        if let Some(arch) = std::env::var("TRTFORGE_CUDA_PRECOMPILE").ok().filter(|a| !a.is_empty()) {
            // Fill the kernel cache for `arch` without a GPU (the GPU machine then skips NVRTC).
            // sm_90 / sm_90a: the module a cc 9.0 GPU loads (gpu::module_source: sm_90a where the wgmma
            // or FP8 GEMM is on); sm_90a alone also forces the TRTFORGE_TCG=4 source as before.
            let (src, arch) = match arch.as_str() {
                "sm_90" => {
                    let (src, a, _, _, _, _) = gpu::module_source(&spec, (9, 0));
                    (src, a)
                }
                "sm_90a" if !spec.f8g() => (spec.source_tcg4(), arch),
                "sm_90a" => (spec.source_sm90a(kernels::tcg4_requested(), true), arch),
                _ => (spec.source(), arch),
            };
            let c = gpu::compile_cached(&src, &arch, &gpu::cache_dir())?;
            if std::env::var_os("TRTFORGE_PTXAS_LOG").is_some() {
                crate::util::errln!("{}", c.log); // ptxas -v: registers, shared memory, spills per kernel
            }
            return Err(Error::Gpu(format!("TRTFORGE_CUDA_PRECOMPILE: kernels for {arch} cached ({:.1} s)", c.secs)));
        }
        let gpu = Gpu::open(opts.device, &spec)?;
        gpu.bind()?;
        gpu.set_const_i32("c_max_seq", seq_cap as i32)?;
        gpu.set_const_i32("c_nsplit", spec.nsplit() as i32)?;
        let act = if spec.act_f32 { 4 } else { 2 };
        let kvb = if spec.kv_cache.quantized() {
            1
        } else if spec.kv_f32 {
            4
        } else {
            2
        };

        // Weights.
        let mut linears = Vec::with_capacity(steps.len());
        // Engines with a `tcd_*` instance keep their f16 down weights a second time, in column tiles.
        let tcd_copy = !spec.tcd_formats().is_empty();
        let (wq_mode, wq_roles) = wq_roles_from_env()?;
        let wq_shapes = wq_shapes_from_env()?;
        let wq_cm = wq::copy_mode()?;
        if let Some((r, _)) = wq_shapes.iter().find(|(r, _)| wq_mode == wq::Mode::Off || !wq_roles.contains(r)) {
            return Err(Error::Invalid(format!(
                "TRTFORGE_WQ_SHAPE names {r:?}, which does not take the quantized decode GEMM here (TRTFORGE_WQ=1 or \
                 TRTFORGE_WQ_ROLES puts it on)"
            )));
        }
        let mut f8_scales: Vec<Option<Vec<f32>>> = Vec::with_capacity(steps.len());
        let mut norms = HashMap::new();
        let mut weight_bytes = 0;
        let mut max_numel = 0;
        for st in &steps {
            match st {
                Step::Linear(l) => {
                    let hl = host_linear(w, q, l, role_fmt(l.role))?;
                    weight_bytes += hl.bytes();
                    max_numel = max_numel.max(hl.n * hl.k);
                    let scales = (!hl.scales.is_empty()).then(|| gpu.upload(&hl.scales)).transpose()?;
                    f8_scales
                        .push((hl.fmt == WeightFormat::F8).then(|| hl.scales.iter().map(|s| s.to_f32()).collect()));
                    linears.push(Some(DevLinear {
                        fmt: hl.fmt,
                        n: hl.n,
                        k: hl.k,
                        data: gpu.upload(&hl.data)?,
                        scales,
                        shadow: None,
                        tcg: None,
                        tcg3: None,
                        tcg4: None,
                        fp8: None,
                        fd: (l.role == Role::Down && hl.fmt == WeightFormat::F16 && tcd_copy)
                            .then(|| gpu.upload(&pack::cols8_tiles(&hl.data, hl.n, hl.k)))
                            .transpose()?,
                        wq: if gpu.wq && wq_roles.contains(&l.role) && wq::fits(hl.fmt, hl.n, hl.k) {
                            let i4 = matches!(hl.fmt, WeightFormat::I4 { .. });
                            let inline = i4 && wq_cm & wq::CM_INLINE != 0;
                            let data = match (i4, inline) {
                                (true, true) => wq::pack4_inline(&hl.data, &hl.scales, hl.n, hl.k),
                                (true, false) => wq::pack4(&hl.data, hl.n, hl.k),
                                _ => wq::pack8(&hl.data, hl.n, hl.k),
                            };
                            Some(WqLinear {
                                data: gpu.upload(&data)?,
                                scales: (i4 && !inline)
                                    .then(|| gpu.upload(&wq::pack_scales4(&hl.scales, hl.n, hl.k)))
                                    .transpose()?,
                                cm: wq_cm,
                                shape: match wq_shapes.iter().find(|(r, _)| *r == l.role) {
                                    Some(&(_, sh)) if wq::slices_ok(hl.k, sh.0) => sh,
                                    Some(&(_, sh)) => {
                                        return Err(Error::Invalid(format!(
                                            "TRTFORGE_WQ_SHAPE: {} K slices do not split the {:?} linear's {} chunks",
                                            sh.0,
                                            l.role,
                                            hl.k / wq::KC
                                        )))
                                    }
                                    None => wq::shape(hl.n, hl.k, gpu.sms as usize),
                                },
                                min_rows: wq::min_rows(hl.fmt, wq_mode),
                            })
                        } else {
                            None
                        },
                    }));
                    if let Some(p) = l.norm {
                        norms.insert(p, gpu.upload(&w.get(p).data)?);
                    }
                }
                _ => {
                    linears.push(None);
                    f8_scales.push(None);
                }
            }
        }
        let embed = if spec.act_f32 {
            gpu.upload(&w.embed.data)?
        } else {
            gpu.upload(&w.embed.data.iter().map(|&x| f16::from_f32(x)).collect::<Vec<_>>())?
        };

        // RoPE tables, computed exactly as the CPU reference does.
        let half = cfg.head_dim / 2;
        let inv = cfg.rope_inv_freq();
        let mut cos = vec![0f32; seq_cap * half];
        let mut sin = vec![0f32; seq_cap * half];
        for p in 0..seq_cap {
            for (i, f) in inv.iter().enumerate() {
                let a = p as f32 * f;
                cos[p * half + i] = a.cos();
                sin[p * half + i] = a.sin();
            }
        }
        let rope_cos = gpu.upload(&cos)?;
        let rope_sin = gpu.upload(&sin)?;

        // KV cache with one extra dummy slot for padded decode rows (paged: one dummy block).
        let slots = opts.max_batch + 1;
        let mut dims = Dims::new(&cfg, &spec, slots);
        dims.paged_blocks = opts.paged_blocks;
        let kv_elems = cfg.num_hidden_layers * dims.layer_cache_len();
        let kcache = gpu.alloc(kv_elems * kvb)?;
        let vcache = gpu.alloc(kv_elems * kvb)?;
        gpu.memset0(&kcache)?;
        gpu.memset0(&vcache)?;
        let kv_scales = match &kv_table {
            Some(t) => {
                let b = gpu.upload(t)?;
                gpu.set_const_ptr("c_kvs", &b)?;
                gpu.set_const_ptr("c_kv_kbase", &kcache)?;
                gpu.set_const_ptr("c_kv_vbase", &vcache)?;
                let layer_bytes = i32::try_from(dims.layer_cache_len())
                    .map_err(|_| Error::Invalid("one layer's 8-bit KV cache exceeds 2 GiB".into()))?;
                gpu.set_const_i32("c_kv_layer", layer_bytes)?;
                Some(b)
            }
            None => None,
        };
        let kv_rot = match &kv_rot_table {
            Some(t) if spec.kv_rot => {
                let signs = gpu.upload(t)?;
                let stage = gpu.alloc(opts.max_tokens.max(1) * cfg.kv_dim() * 4)?;
                gpu.set_const_ptr("c_kvrot", &signs)?;
                gpu.set_const_ptr("c_kstage", &stage)?;
                // K smoothing with the rotation: the means, subtracted by kv_rot before rotating.
                let mean = match opts.kv.as_ref().and_then(|k| k.k_mean.as_ref()) {
                    Some(m) if m.len() == cfg.num_hidden_layers * cfg.kv_dim() => {
                        let b = gpu.upload(m)?;
                        gpu.set_const_ptr("c_kmean", &b)?;
                        Some(b)
                    }
                    Some(m) => {
                        return Err(Error::Invalid(format!(
                            "K means: {} values for {} layers × kv_dim {}",
                            m.len(),
                            cfg.num_hidden_layers,
                            cfg.kv_dim()
                        )))
                    }
                    None => None,
                };
                Some((signs, stage, mean))
            }
            _ => None,
        };

        // FP8 GEMM (W8A8) for fp8 linears whose shape cuBLASLt's FP8 GEMM takes (k, n multiples of
        // 16): f32 weight scales, the engine dir's static input scale where the step's params have
        // one (q, k, v share their input, as gate and up do: the largest is taken).
        // On cc 9.0 (gpu.f8g) its 9..=64-row passes run the session-28 f8g kernels, more rows cuBLASLt.
        if fmt == WeightFormat::F8 && fp8_gemm_requested() && !spec.act_f32 && gpu.cc >= (8, 9) && gpu.has_lt() {
            // `TRTFORGE_FP8_GEMM_ROLES=qkv,o` (session 57, a diagnostic): only those layer linears take the FP8 GEMM,
            // the others keep their f16 copies and wq. Unset: every fp8 linear, as before.
            let roles = roles_from_env("TRTFORGE_FP8_GEMM_ROLES")?;
            for ((st, lin), ws) in steps.iter().zip(linears.iter_mut()).zip(&f8_scales) {
                let (Step::Linear(l), Some(lin), Some(ws)) = (st, lin.as_mut(), ws) else { continue };
                if lin.fmt != WeightFormat::F8 || lin.k % 16 != 0 || lin.n % 16 != 0 || ws.len() != lin.n {
                    continue;
                }
                if roles.as_ref().is_some_and(|r| !r.contains(&l.role)) {
                    continue;
                }
                let st_scales: Vec<f32> =
                    l.params.iter().filter_map(|&p| q.and_then(|q| q.input_scale(p))).map(|s| s.to_f32()).collect();
                let sstat = if !st_scales.is_empty() && st_scales.len() == l.params.len() {
                    let m = st_scales.iter().fold(0f32, |a, &b| a.max(b));
                    Some(gpu.upload(&[m])?)
                } else {
                    None
                };
                lin.fp8 = Some(Fp8Gemm { wscale: gpu.upload(ws)?, sstat });
            }
        }
        let mt = opts.max_tokens;
        let widest = cfg.hidden_size.max(cfg.q_dim()).max(cfg.intermediate_size);
        let ywide = (cfg.q_dim() + 2 * cfg.kv_dim()).max(2 * cfg.intermediate_size);
        let quantized = !matches!(fmt, WeightFormat::F16 | WeightFormat::F32);
        let layout = MetaLayout { max_tokens: mt, max_seqs: mt.max(slots) };
        let mut s = Scratch {
            h: gpu.alloc(mt * cfg.hidden_size * 4)?,
            hsel: gpu.alloc(mt * cfg.hidden_size * 4)?,
            xact: gpu.alloc(mt * widest * act)?,
            q: gpu.alloc(mt * cfg.q_dim() * 4)?,
            y: gpu.alloc(mt * ywide * 4)?,
            logits: gpu.alloc(mt * cfg.vocab_size * 4)?,
            wdeq: if quantized { Some(gpu.alloc(max_numel * 2)?) } else { None },
            xq: if linears.iter().flatten().any(|l| l.fp8.is_some()) {
                Some((gpu.alloc(mt * widest)?, gpu.alloc(mt * 4)?))
            } else {
                None
            },
            // At least FOLD_REPS_MAX rows: a folded one-row attention may store that many copies.
            part: gpu.alloc(
                layout.max_seqs.max(FOLD_REPS_MAX) * cfg.num_attention_heads * spec.nsplit() * (cfg.head_dim + 4) * 4,
            )?,
            counters: gpu.alloc(layout.max_seqs * cfg.num_key_value_heads * 4)?,
            meta: gpu.alloc(layout.len() * 4)?,
            next: gpu.alloc(layout.max_seqs * 4)?,
            am_keys: gpu.alloc(layout.max_seqs * 8)?,
            am_cnt: gpu.alloc(layout.max_seqs * 4)?,
            hist: gpu.alloc((opts.max_seq + 1) * slots * 4)?,
            hist_ctr: {
                let c = gpu.alloc(4)?;
                gpu.memset0(&c)?; // mk_advance counts from here outside greedy loops too
                c
            },
            qa: gpu.alloc(mt * cfg.q_dim() * act)?,
            scores: {
                let n = cfg.num_attention_heads * seq_cap * seq_cap;
                // The batched-GEMM attention reads each (slot, head) as one contiguous matrix, which
                // a paged cache is not: paged prefills run the tiled kernel (attn_prefill).
                // (An 8-bit cache is read by the tensor-core kernels only.)
                if n * 4 <= MAX_SCORE_BYTES && opts.paged_blocks.is_none() && !spec.kv_cache.quantized() {
                    Some((gpu.alloc(n * 4)?, gpu.alloc(n * act)?))
                } else {
                    None
                }
            },
            ptrs: gpu.alloc(cfg.num_hidden_layers * slots * 6 * cfg.num_attention_heads * 8)?,
        };
        gpu.memset0(&s.counters)?;
        gpu.memset0(&s.am_keys)?;
        gpu.memset0(&s.am_cnt)?;
        gpu.memset0(&s.meta)?;
        let tbl_stride = seq_cap.div_ceil(paged::BLOCK);
        let tables = match opts.paged_blocks {
            Some(nb) => {
                // Every entry starts at the dummy block: stray reads stay inside the pool.
                let mut init = vec![nb as i32; slots * tbl_stride];
                if identity {
                    for (i, e) in init[..opts.max_batch * tbl_stride].iter_mut().enumerate() {
                        *e = i as i32;
                    }
                }
                let t = gpu.upload(&init)?;
                let p = gpu.alloc(layout.max_seqs * 8 * 4)?;
                gpu.set_const_ptr("c_tables", &t)?;
                gpu.set_const_i32("c_tbl_stride", tbl_stride as i32)?;
                Some((t, p))
            }
            None => None,
        };
        // GEMV kernels with more than 48 KB of staged activations need the larger limit.
        for &(role, f) in &spec.formats {
            for &m in &GEMV_MTS {
                let bytes = m * role.k(&cfg) * act;
                if bytes > 48 * 1024 {
                    gpu.allow_smem(&gemv_name(role, f, m), bytes)?;
                }
            }
        }
        if gpu.f8g {
            for (name, nt, nst) in F8G_INSTANCES {
                gpu.allow_smem(name, f8g_smem(nt, nst))?;
            }
        }
        if gpu.wq {
            for fmt in [WeightFormat::I8, WeightFormat::F8, WeightFormat::I4 { group: wq::KC }] {
                for nst in wq::SLOTS {
                    if let Some(name) = wq::kernel_name(fmt, nst) {
                        gpu.allow_smem(name, wq::smem(fmt, nst))?;
                    }
                }
            }
        }
        // Probe every FP8 GEMM shape once at the decode batch's rows (this also tunes those shapes
        // outside graph capture): with cuBLASLt's scale vectors, else unscaled + `fp8_rescale`;
        // where cuBLASLt refuses both, every fp8 linear keeps its f16 copy.
        let mut fp8_scales = LtScale::OuterVec;
        if let Some((xq, xs)) = &s.xq {
            let rows = mt.clamp(GEMV_MAX_T + 1, 64);
            let probe = Kernels::new(&gpu, &dims);
            let maxn = linears.iter().flatten().map(|l| l.n).max().unwrap_or(0);
            let (c, scr) = (gpu.alloc(rows * maxn * 4)?, gpu.alloc(rows * maxn * 4)?);
            gpu.memset0(xq)?;
            gpu.htod(xs, 0, &vec![1f32; mt])?;
            let try_mode = |mode: LtScale| -> Result<()> {
                for (st, lin) in steps.iter().zip(linears.iter()) {
                    let (Step::Linear(l), Some(lin)) = (st, lin.as_ref()) else { continue };
                    let Some(f8) = &lin.fp8 else { continue };
                    // Unscaled GEMMs write y and never accumulate (fp8_rescale adds).
                    let acc = mode == LtScale::OuterVec && matches!(l.role, Role::O | Role::Down);
                    let (wv, xv) = (lin.data.view(DType::U8), xq.view(DType::U8));
                    let (ws, xsv) = (f8.wscale.f32(), xs.f32());
                    probe.gemm_fp8(rows, lin.n, lin.k, wv, ws, mode, xv, xsv, mode, c.f32(), acc, scr.f32())?;
                }
                gpu.sync()
            };
            let mut err = None;
            if let Err(e) = try_mode(LtScale::OuterVec) {
                crate::util::errln!(
                    "note: cuBLASLt's FP8 GEMM with scale vectors: {e}; trying it unscaled + fp8_rescale"
                );
                fp8_scales = LtScale::None;
                if let Err(e2) = try_mode(LtScale::None) {
                    err = Some(Error::Gpu(format!("{e}; unscaled: {e2}")));
                }
            }
            if let Some(e) = err {
                crate::util::errln!("warning: TRTFORGE_FP8_GEMM: cuBLASLt's FP8 GEMM is not usable here ({e}); fp8 linears keep their f16 copies");
                for lin in linears.iter_mut().flatten() {
                    lin.fp8 = None;
                }
                s.xq = None;
            }
        }
        let fp8_gemm = s.xq.is_some();
        if quantized && std::env::var("TRTFORGE_DEQUANT_ONCE").as_deref() != Ok("0") {
            for lin in linears.iter_mut().flatten() {
                if matches!(lin.fmt, WeightFormat::F16 | WeightFormat::F32) || lin.fp8.is_some() {
                    continue;
                }
                let buf = gpu.alloc(lin.n * lin.k * 2)?;
                Kernels::new(&gpu, &dims).dequant(&lin.weights(), buf.view(DType::F16))?;
                lin.shadow = Some(buf);
            }
            gpu.sync()?;
        }
        let use_tc = gpu.cc.0 >= 8 && std::env::var("TRTFORGE_TC").as_deref() != Ok("0");
        if use_tc {
            for (role, f) in spec.tc_roles() {
                let bytes = tc_smem(GEMV_MAX_T, role.k(&cfg));
                if bytes > 48 * 1024 {
                    gpu.allow_smem(&tc_name(role, f), bytes)?;
                }
                // tcm_*: ~28 KB of static shared memory besides (session 6).
                gpu.allow_smem(&tcm_name(role, f), bytes)?;
            }
        }
        // tcc_* (bs1 switch `ocomb`): as many splits' records as fit in TCC_SMEM_MAX.
        let tcc_ns_max = if use_tc && !spec.act_f32 && !spec.tcc_roles().is_empty() {
            let (qd, nh, hd) = (cfg.q_dim(), cfg.num_attention_heads, cfg.head_dim);
            let per = nh * (hd * 2 + 4);
            let ns = (TCC_SMEM_MAX.saturating_sub(tc_smem(1, qd)) / per).min(spec.nsplit()).min(TCC_NS_MAX);
            if ns > 0 {
                for (role, f) in spec.tcc_roles() {
                    gpu.allow_smem(&tcc_name(role, f), tcc_smem(qd, nh, hd, ns))?;
                    // bs1 switch `ocl16` (session 13): clusters of 16 o blocks (non-portable size).
                    if gpu.cc.0 >= 9 {
                        gpu.allow_big_clusters(&tcc_name(role, f))?;
                    }
                }
            }
            ns
        } else {
            0
        };
        // tcd_* (TRTFORGE_GUD=1): as many blocks as are resident at once (each waits for every
        // other's staged x), each taking <= ceil(tiles / blocks) gate/up tiles (TRTFORGE_GUD_GRID=N: N
        // blocks, if they are resident at once).
        let gud = match spec.tcd_formats().first() {
            Some(&f) if use_tc => {
                let name = tcd_name(f);
                let tiles = 2 * cfg.intermediate_size / 16;
                let smem = tcd_smem(cfg.hidden_size);
                gpu.allow_smem(&name, smem)?;
                let resident = (gpu.occupancy(&name, TC_THREADS, smem)? * gpu.sms) as usize;
                let fixed = std::env::var("TRTFORGE_GUD_GRID").ok().and_then(|v| v.parse::<usize>().ok());
                let grid = fixed.unwrap_or(resident).min(tiles);
                if grid == 0 || grid > resident || 8 * tiles.div_ceil(grid) > TCD_MAX_COLS {
                    return Err(Error::Gpu(format!(
                        "TRTFORGE_GUD=1: {name} cannot take {tiles} gate/up tiles on {grid} blocks ({resident} resident \
                         at once, at most {} tiles a block)",
                        TCD_MAX_COLS / 8
                    )));
                }
                let cnt = gpu.alloc(8)?;
                gpu.memset0(&cnt)?;
                Some((grid as u32, cnt))
            }
            _ => None,
        };
        // Batched tensor-core GEMMs: one K split per linear, chosen for the blocks that fit at once.
        let mut use_tcg = use_tc && !spec.act_f32 && std::env::var("TRTFORGE_TCG").as_deref() == Ok("1");
        let (mut tcg_ws, mut tcg_cnt) = (None, None);
        if use_tcg {
            let ks_min: usize = std::env::var("TRTFORGE_TCG_KSMIN")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(512)
                .clamp(64, TCG_MAX_KS);
            // TRTFORGE_TCG_KSMAX: narrower slices (checks: the split-K reduction on tiny models).
            let ks_max: usize =
                std::env::var("TRTFORGE_TCG_KSMAX").ok().and_then(|v| v.parse().ok()).unwrap_or(TCG_MAX_KS);
            let (mut ws, mut tiles) = (0usize, 0usize);
            for (si, lin) in linears.iter_mut().enumerate() {
                let Some(lin) = lin.as_mut() else { continue };
                let role = match &steps[si] {
                    Step::Linear(l) => l.role,
                    _ => continue,
                };
                if !lin.fmt.has_tc() || lin.n % 16 != 0 {
                    if role != Role::Head {
                        use_tcg = false; // gate/up and down must agree on where m lives
                    }
                    continue;
                }
                let name = tcg_name(role, lin.fmt);
                gpu.allow_smem(&name, TCG_MAX_T * (TCG_MAX_KS + lin.fmt.tcg_pad()) * 2)?;
                let guess = tcg_shape_capped(lin.n, lin.k, lin.fmt, 2 * gpu.sms as usize, ks_min, ks_max);
                let occ = gpu.occupancy(&name, TCG_THREADS, guess.smem)? as usize;
                let sh = tcg_shape_capped(lin.n, lin.k, lin.fmt, occ * gpu.sms as usize, ks_min, ks_max);
                ws = ws.max(sh.ws_floats(lin.n));
                tiles = tiles.max(lin.n / 16);
                lin.tcg = Some(sh);
            }
            if use_tcg {
                let cnt = gpu.alloc(tiles * 4)?;
                gpu.memset0(&cnt)?;
                tcg_ws = Some(gpu.alloc(ws * 4)?);
                tcg_cnt = Some(cnt);
            }
        }
        // Session-6 batched decode GEMM (tcg3): TRTFORGE_TCG=3. Every layer linear must fit (gate/up
        // and down agree on where m lives); the head joins where it fits.
        if use_tc && !spec.act_f32 && gpu.cc.0 >= 9 && std::env::var("TRTFORGE_TCG").as_deref() == Ok("3") {
            let ks_max: usize =
                std::env::var("TRTFORGE_TCG_KSMAX").ok().and_then(|v| v.parse().ok()).unwrap_or(usize::MAX);
            let sms = gpu.sms as usize;
            let mut shapes = Vec::new();
            let mut all = true;
            for (si, lin) in linears.iter().enumerate() {
                let (Some(lin), Step::Linear(l)) = (lin.as_ref(), &steps[si]) else { continue };
                let cands = tcg3_shapes(lin.n, lin.k, lin.fmt, sms, ks_max);
                if cands.is_empty() && l.role != Role::Head {
                    all = false;
                }
                shapes.push((si, l.role, cands));
            }
            if all {
                // The cheapest candidate whose clusters (or blocks) are all resident at once (a
                // second wave of clusters doubles the time), else the cheapest.
                let log = std::env::var("TRTFORGE_TCG3_LOG").as_deref() == Ok("1");
                for (si, role, cands) in shapes {
                    let Some(lin) = linears[si].as_mut() else { continue };
                    let name = tcg3_name(role, lin.fmt);
                    let mut pick = None;
                    for sh in cands.iter().take(12) {
                        gpu.allow_smem(&name, sh.smem)?;
                        let grid = (sh.slices as u32, sh.groups as u32, 1);
                        let fit =
                            gpu.max_active_clusters(&name, grid, sh.rb as u32, sh.smem as u32, sh.slices as u32)?
                                as usize;
                        if log && si < 8 {
                            crate::util::errln!(
                                "tcg3 {} {}x{} {:?}: {} clusters fit",
                                role.tag(),
                                lin.n,
                                lin.k,
                                sh,
                                fit
                            );
                        }
                        if fit >= sh.groups {
                            pick = Some(*sh);
                            break;
                        }
                    }
                    let Some(sh) = pick.or(cands.first().copied()) else { continue };
                    gpu.allow_smem(&name, sh.smem)?;
                    lin.tcg3 = Some(sh);
                    if log && si < 8 {
                        crate::util::errln!("tcg3 {} picked {:?}", role.tag(), sh);
                    }
                }
            }
        }
        // Session-7 wgmma GEMM (tcg4): TRTFORGE_TCG=4, the module built for sm_90a (gpu.wgmma). Every
        // layer linear needs an f16 source (fp16 weights or the quantized engines' f16 copy); the
        // head joins where it fits. The packed copy is made once here.
        if gpu.wgmma && use_tc && !spec.act_f32 {
            let src_ok = |lin: &DevLinear| {
                tcg4_fits(lin.n, lin.k) && (lin.fmt == WeightFormat::F16 || (lin.shadow.is_some() && lin.fp8.is_none()))
            };
            let all = linears.iter().zip(&steps).all(|(lin, st)| match (lin, st) {
                (Some(lin), Step::Linear(l)) => l.role == Role::Head || src_ok(lin),
                _ => true,
            });
            let log = std::env::var("TRTFORGE_TCG4_LOG").as_deref() == Ok("1");
            if all {
                let k4 = Kernels::new(&gpu, &dims);
                for (si, lin) in linears.iter_mut().enumerate() {
                    let (Some(lin), Step::Linear(l)) = (lin.as_mut(), &steps[si]) else { continue };
                    if !src_ok(lin) {
                        continue;
                    }
                    // Per row padding: the cheapest candidate whose clusters (or blocks) are all
                    // resident at once, else the cheapest.
                    let mut shapes: Vec<Tcg4Shape> = vec![];
                    for &nt in &TCG4_NTS {
                        let name = tcg4_name(l.role, nt);
                        let cands = tcg4_shapes(lin.n, lin.k, nt, gpu.sms as usize);
                        let mut pick = None;
                        for sh in cands.iter().take(8) {
                            gpu.allow_smem(&name, sh.smem)?;
                            let grid = (sh.slices as u32, sh.tiles as u32, 1);
                            let fit =
                                gpu.max_active_clusters(&name, grid, TCG4_THREADS, sh.smem as u32, sh.slices as u32)?;
                            if log && si < 8 {
                                crate::util::errln!(
                                    "tcg4 {} {}x{} {sh:?}: {fit} clusters fit",
                                    l.role.tag(),
                                    lin.n,
                                    lin.k
                                );
                            }
                            if fit as usize >= sh.tiles {
                                pick = Some(*sh);
                                break;
                            }
                        }
                        let Some(sh) = pick.or(cands.first().copied()) else { break };
                        gpu.allow_smem(&name, sh.smem)?;
                        if log && si < 8 {
                            crate::util::errln!("tcg4 {} picked {sh:?}", l.role.tag());
                        }
                        shapes.push(sh);
                    }
                    if shapes.len() != TCG4_NTS.len() {
                        continue;
                    }
                    // + one zeroed 8 KB stage: the kernel copies whole stages, the last one past K.
                    let packed = gpu.alloc(lin.n.div_ceil(64) * 64 * lin.k * 2 + TCG4_KC * 128)?;
                    gpu.memset0(&packed)?;
                    let src = lin.shadow.as_ref().unwrap_or(&lin.data).view(DType::F16);
                    k4.tcg4_pack(src, packed.view(DType::F16), lin.n, lin.k)?;
                    lin.tcg4 = Some((packed, shapes));
                }
                gpu.sync()?;
            }
        }
        let kv8 = spec.kv_cache.quantized();
        if kv8 && gpu.cc.0 < 8 {
            return Err(Error::Unsupported("an 8-bit KV cache needs tensor cores (sm_80+)".into()));
        }
        let persist = if use_tc && std::env::var("TRTFORGE_PERSIST").as_deref() == Ok("1") {
            if spec.kv_rot {
                return Err(Error::Unsupported(
                    "TRTFORGE_PERSIST=1 (the persistent decode layer) does not run a rotated KV cache (kv_rotate)"
                        .into(),
                ));
            }
            Persist::new(&gpu, &spec, &steps, &linears)?
        } else {
            None
        };
        let prefill_fa = spec.attn_tc()
            && gpu.cc.0 >= 8
            && (kv8 || std::env::var("TRTFORGE_PREFILL_ATTN").as_deref() != Ok("cublas"));
        let gemm_env = std::env::var("TRTFORGE_GEMM");
        let gemm_lt = gpu.has_lt() && !spec.act_f32 && gemm_env.as_deref() == Ok("lt");
        // Session 18: decode passes of LT_DECODE_ROWS or more rows through cuBLASLt by default
        // (bs64 +1.6–2.4 % every precision, bs32 +1.5 %, bs16 −0.3…1.3 %: left to cublasGemmEx);
        // session 36: paged (serve) engines too; TRTFORGE_GEMM=cublas keeps cublasGemmEx there.
        let gemm_lt_decode = if gpu.has_lt() && !spec.act_f32 && gemm_env.as_deref() != Ok("cublas") {
            std::env::var("TRTFORGE_LT_DECODE_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(LT_DECODE_ROWS)
        } else {
            usize::MAX
        };
        let gemm_f16out = gemm_lt && std::env::var("TRTFORGE_GEMM_F16OUT").as_deref() == Ok("1");
        let pf = prefill::PrefillOpts::from_env(&spec, prefill_fa, opts.paged_blocks.is_some());
        // Decode attention (session 5): attn_decode_cl on sm_90 where it is compiled (used per pass as
        // below), TRTFORGE_ATTN=tc1 the session-2 tensor-core kernel, v2 / v1 the CUDA-core ones.
        let cl_ok = spec.attn_cl() && gpu.cc.0 >= 9;
        // TRTFORGE_ATTN=cl8: the 8-warp attn_decode_cl8 (opt-in; its attn list passed in session 7; 2 stages
        // by default so that 2 blocks fit an SM), used where the default uses attn_decode_cl.
        // TRTFORGE_ATTN=cl8all: attn_decode_cl8 at every batch size (for cuda-check).
        // Session 7: TRTFORGE_ATTN=cx / cx4 / cx8: attn_decode_cx (4 warps; cx: ACX_DEFAULT's warps
        // if set) / attn_decode_cx8 (the transposed tile step, f16 caches) where one block per (row,
        // kv head) runs (bs64), cluster launches (bs1 with the `cl` knob) and 8-bit caches keep
        // attn_decode_cl; cxall / cx8all: at every batch size (cuda-check). With ACX_DEFAULT set,
        // cx is the default there and TRTFORGE_ATTN=cl4 runs the session-5 attn_decode_cl.
        let ea = std::env::var("TRTFORGE_ATTN").unwrap_or_default();
        let named_cx = matches!(ea.as_str(), "cx" | "cx4" | "cx8" | "cxall" | "cx8all");
        let named_cl = matches!(ea.as_str(), "cl" | "cl4" | "cl8" | "cl8all");
        let cx = spec.attn_cx() && (named_cx || (ACX_DEFAULT.is_some() && !named_cl));
        let warps = match ea.as_str() {
            "cl8" | "cl8all" | "cx8" | "cx8all" => 8,
            "cl" | "cl4" | "cx4" | "cxall" => 4,
            _ if cx => ACX_DEFAULT.unwrap_or(4),
            _ => 4,
        };
        let cl_stages = |w: usize| env_usize("TRTFORGE_ATTN_STAGES").unwrap_or(if w == 8 { 2 } else { 4 }).clamp(2, 8);
        let stages = if cx { acx_stages(warps, kv8) } else { cl_stages(warps) };
        // Where attn_decode_cx runs (not forced), the cluster launches (cs > 1) take the session-5
        // attn_decode_cl (4 warps) instead.
        let acl_fb = DecodeAttn::Cl { stages: cl_stages(4), warps: 4, cx: false };
        // Default (measured on the H200, docs/cuda.md session 5): attn_decode_cl only for decode
        // passes whose (row, kv head) pairs fill the resident blocks (one block each, no cluster:
        // bs64), attn_decode_tc below that and for 8-bit caches; TRTFORGE_ATTN=cl runs
        // attn_decode_cl at every batch size and cache format. Session 10: decode passes of 2-8 rows
        // take attn_decode_cg instead where the bs1 switch `mcg` is on (the default with f16 caches,
        // `acg` below, chosen per pass in the Attention step).
        let env_attn = std::env::var("TRTFORGE_ATTN");
        let acl_forced = matches!(env_attn.as_deref(), Ok("cl" | "cl8all" | "cxall" | "cx8all"));
        let attn_kernel = match env_attn.as_deref() {
            Ok("tc1") if spec.attn_tc() && gpu.cc.0 >= 8 => DecodeAttn::Tc,
            _ if kv8 && cl_ok && acl_forced => DecodeAttn::Cl { stages, warps, cx },
            // Session 12: 8-bit caches take the 8-warp attn_decode_cl8 where one block per (row, kv
            // head) fills the device (bs64; attn_decode_tc below that, as before): TinyLlama fp8 KV at a
            // 4k context, bs64, 30,161 → 31,226 tok/s (4 warps: 29,459). TRTFORGE_ATTN=tc1: the old default.
            // Session 36: attn_decode_cx8 reads 8-bit caches too (the codes turned into its fragments in
            // registers) and takes that place unless TRTFORGE_ATTN names a cl kernel (cl8: session 12's).
            _ if kv8 && cl_ok && KV8_CL8 => {
                let w = if named_cx { warps } else { 8 };
                DecodeAttn::Cl { stages: if cx { acx_stages(w, true) } else { cl_stages(w) }, warps: w, cx }
            }
            _ if kv8 => DecodeAttn::Tc,
            Ok("v1") => DecodeAttn::V1,
            Ok("v2") => DecodeAttn::Cuda,
            _ if cl_ok => DecodeAttn::Cl { stages, warps, cx },
            _ if spec.attn_tc() && gpu.cc.0 >= 8 => DecodeAttn::Tc,
            _ => DecodeAttn::Cuda,
        };
        let gemm_pad = opts.paged_blocks.is_some() && std::env::var("TRTFORGE_SERVE_GEMM_PAD").as_deref() != Ok("0");
        // attn_decode_cl: resident blocks (cluster sizes are chosen to fill them, at most
        // TRTFORGE_ATTN_CS blocks per (kv head, row), default 8; up to 16 with non-portable clusters).
        let (acl_slots, acl_csmax) = if let DecodeAttn::Cl { stages, warps, .. } = attn_kernel {
            let smem = acl_smem(stages, warps, cfg.head_dim, dims.kv);
            gpu.allow_smem(attn_kernel.name(), smem)?;
            let occ = gpu.occupancy(attn_kernel.name(), (warps * 32) as u32, smem)? as usize;
            let csmax = env_usize("TRTFORGE_ATTN_CS").unwrap_or(8).clamp(1, ACL_MAXCS);
            if csmax > 8 {
                gpu.allow_big_clusters(attn_kernel.name())?;
            }
            if let DecodeAttn::Cl { stages: fs, warps: fw, .. } = acl_fb {
                gpu.allow_smem(acl_fb.name(), acl_smem(fs, fw, cfg.head_dim, dims.kv))?;
                if csmax > 8 {
                    gpu.allow_big_clusters(acl_fb.name())?;
                }
            }
            (occ * gpu.sms as usize, csmax)
        } else {
            (0, 0)
        };
        let acl_csf = match std::env::var("TRTFORGE_ATTN_CSF") {
            Err(_) => None,
            Ok(v) => match (v.parse::<usize>(), attn_kernel) {
                (Ok(n), DecodeAttn::Cl { .. }) if (1..=acl_csmax).contains(&n) => Some(n),
                (_, DecodeAttn::Cl { .. }) => {
                    return Err(Error::Invalid(format!(
                        "TRTFORGE_ATTN_CSF={v:?}: a cluster size 1..={acl_csmax} (the limit is TRTFORGE_ATTN_CS, default 8)"
                    )))
                }
                _ => {
                    return Err(Error::Invalid(format!(
                        "TRTFORGE_ATTN_CSF={v:?}: this engine's decode attention is {}, not attn_decode_cl / cx (sm_90, \
                         an f16 or 8-bit cache)",
                        attn_kernel.name()
                    )))
                }
            },
        };
        let attn_reps = match std::env::var("TRTFORGE_ATTN_REPS") {
            Err(_) => 1,
            Ok(v) => match v.parse::<usize>() {
                Ok(n) if n <= 4 => n,
                _ => {
                    return Err(Error::Invalid(format!(
                        "TRTFORGE_ATTN_REPS={v:?}: launches of the decode attention a decode pass, 0..=4 (a diagnostic)"
                    )))
                }
            },
        };
        // The fused epilogue (RoPE + the KV append inside attn_decode_cx8) wherever it can run, static and paged
        // (serve) engines; TRTFORGE_ATTN_ROPE=0 turns it off, =1 requires it (refused where it cannot run: a
        // diagnostic).
        let required = attn_rope_switch(std::env::var("TRTFORGE_ATTN_ROPE").ok().as_deref())?;
        // (attn_cx_rope implies an f16 or 8-bit cache: the attention kernels are built without f32 ones.)
        let attn_rope = match (required, attn_kernel, spec.attn_cx_rope()) {
            (None, ..) => false,
            (Some(_), DecodeAttn::Cl { stages, warps: 8, cx: true }, true) => {
                for name in ["attn_decode_cx8r", "attn_decode_cx8rh"] {
                    gpu.allow_smem(name, acl_smem(stages, 8, cfg.head_dim, dims.kv))?;
                    if acl_csmax > 8 {
                        gpu.allow_big_clusters(name)?;
                    }
                }
                true
            }
            (Some(false), ..) => false,
            (Some(true), ..) => {
                return Err(Error::Invalid(format!(
                    "TRTFORGE_ATTN_ROPE=1: this engine's decode attention is {} (head_dim {}, cache {:?}); the fused \
                     RoPE needs attn_decode_cx8, head_dim % 64 == 0 and an f16 or 8-bit cache without K rotation",
                    attn_kernel.name(),
                    cfg.head_dim,
                    dims.kv
                )))
            }
        };
        // Not where TRTFORGE_ATTN forces one kernel at every batch size (cl / cl8all / cxall / cx8all:
        // what cuda-check's lists for those kernels run).
        let acg = if cl_ok && !acl_forced {
            let stages = env_usize("TRTFORGE_CG_STAGES").unwrap_or(CG_STAGES).clamp(2, 8);
            let k = DecodeAttn::Cg { stages };
            let smem = acl_smem(stages, 4, cfg.head_dim, dims.kv);
            gpu.allow_smem(k.name(), smem)?;
            let occ = gpu.occupancy(k.name(), kernels::ATT_THREADS, smem)? as usize;
            Some((k, occ.max(1) * gpu.sms as usize))
        } else {
            None
        };
        gpu.sync()?;
        // bs1 decode switches (session 6): the measured default per engine unless TRTFORGE_BS1 says.
        let bs1_default = timeline::bs1_default(
            fmt,
            weight_bytes,
            gpu.cc.0 >= 9 && gpu.pdl && use_tc,
            // The one-row / 2–8-row switches were measured for 8-bit caches on attn_decode_tc (their
            // bs64 kernel, KV8_CL8, does not change them).
            matches!(attn_kernel, DecodeAttn::Cl { .. }) && !kv8,
        );
        // `default+...` applies the switches on top of the engine's default (as bench's TRTFORGE_BS1_AB).
        let bs1 = match std::env::var("TRTFORGE_BS1") {
            Ok(v) => match v.strip_prefix("default") {
                Some(rest) => timeline::Bs1Knobs::parse_on(bs1_default, rest)?,
                None => timeline::Bs1Knobs::parse(&v)?,
            },
            Err(_) => bs1_default,
        };
        gpu.set_const_i32("c_trig_rows", GEMV_MAX_T as i32)?;
        gpu.set_const_i32s("c_trig", &bs1.trig_modes())?;
        gpu.set_const_i32("c_scpre", bs1.scpre_rows())?;
        if let Some(c) = bs1.carveout {
            gpu.set_carveout_all(c)?;
        }
        // Session 7 (ttft7): the GEMV paths round qkv / gate-up sums to f16 where the GEMM path writes f16.
        gpu.set_const_i32("c_y16", pf.f16y as i32)?;
        let mk = match gpu.func("mk_step") {
            Err(_) => {
                if kernels::mk_requested() {
                    let d = mk_load::dims_of(&cfg);
                    let why = d.check().err().map(|e| format!(" (this model: {e})")).unwrap_or_default();
                    crate::util::errln!(
                        "TRTFORGE_MK=1: not used: the megakernel runs fp16 engines with a static f16 KV cache on cc 9.0{why}"
                    );
                }
                None
            }
            Ok(_) if seq_cap > mk::max_len() => {
                // One captured decode graph serves every position, so a longer cache cannot use it.
                crate::util::errln!(
                    "TRTFORGE_MK=1: not used: the megakernel's attention holds at most {} positions, this engine's KV \
                     cache {seq_cap}",
                    mk::max_len()
                );
                None
            }
            Ok(_) => {
                let m = mk_state(&gpu, w, &cfg, slots, &embed, &kcache, &vcache, &rope_cos, &rope_sin, &s, layout)?;
                let d = mk_load::dims_of(&cfg);
                crate::util::errln!(
                    "TRTFORGE_MK=1: one-row decode steps run as one persistent launch (mk_step: {} blocks, chunks {} / {} \
                     wide, {} ring slots, {} B of shared memory)",
                    m.grid,
                    d.ckh(),
                    d.cki(),
                    d.nslot(),
                    m.smem
                );
                Some(m)
            }
        };
        Ok(CudaBackend {
            lens: vec![0; opts.max_batch],
            cfg,
            opts,
            gpu,
            spec,
            steps,
            linears,
            norms,
            embed,
            kcache,
            vcache,
            kv_scales,
            kv_rot,
            tables,
            tbl_stride,
            rope_cos,
            rope_sin,
            s,
            layout,
            graphs: HashMap::new(),
            loop_graph: None,
            grid_cache: HashMap::new(),
            use_tc,
            attn_kernel,
            acl_slots,
            acl_csmax,
            acl_csf,
            attn_reps,
            attn_rope,
            acl_forced,
            acl_fb,
            acg,
            use_tcg,
            gemm_pad,
            prefill_fa,
            gemm_lt,
            gemm_lt_decode,
            gemm_f16out,
            fp8_gemm,
            fp8_scales,
            tcg_ws,
            tcg_cnt,
            dims,
            persist,
            weight_bytes,
            profile: None,
            pf,
            fine: std::cell::RefCell::new(None),
            pf_graphs: HashMap::new(),
            pass_seqs: vec![],
            lead_decode: 0,
            bs1,
            bs1_default,
            tcc_ns_max,
            gud,
            mk,
        })
    }

    pub fn options(&self) -> &CudaOptions {
        &self.opts
    }

    /// Whether one-row decode steps run the megakernel (`TRTFORGE_MK=1`, and this engine got it).
    pub fn mk_active(&self) -> bool {
        self.mk.is_some()
    }

    /// The decoder linears whose GEMM-path passes (more than [`GEMV_MAX_T`] rows) run the FP8 GEMM
    /// (W8A8: inputs rounded to E4M3, static or per-row scales); empty unless `TRTFORGE_FP8_GEMM=1`
    /// on an fp8 engine where cuBLASLt ran it. The CPU reference of the checks rounds those inputs
    /// the same way (`CpuQuant::fp8_rows`).
    pub fn fp8_gemm_params(&self) -> Vec<Param> {
        if !self.fp8_gemm {
            return vec![];
        }
        let mut v = vec![];
        for (st, lin) in self.steps.iter().zip(&self.linears) {
            if let (Step::Linear(l), Some(lin)) = (st, lin) {
                if lin.fp8.is_some() {
                    v.extend(l.params.iter().copied());
                }
            }
        }
        v
    }
    pub fn device_name(&self) -> &str {
        &self.gpu.name
    }
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }
    /// The cuBLASLt GEMM self-test (FP8 GEMM vs a host reference, tuned f16 / FP8 times at the
    /// TinyLlama shapes) on this engine's GPU: [`gemm_check`].
    pub fn gemm_selftest(&self) -> Result<gemm_check::GemmSelfTest> {
        self.gpu.bind()?;
        gemm_check::run(&self.gpu, &self.dims)
    }
    /// The quantized decode GEMM's self-test and per-launch times on this engine's GPU ([`wq_check`]; its module must
    /// hold the GEMM: a quantized engine on cc 9.0).
    pub fn wq_selftest(&self, reps: usize) -> Result<Vec<wq_check::WqCase>> {
        self.gpu.bind()?;
        if !self.gpu.wq {
            return Err(Error::Gpu("the wq self-test needs an int8 / int4 g128 / fp8 engine on cc 9.0".into()));
        }
        wq_check::run(&self.gpu, &self.dims, reps)
    }
    /// NVRTC compile time of this engine's kernels (0 when they came from the disk cache).
    pub fn compile_info(&self) -> (f64, bool) {
        (self.gpu.compile_secs, self.gpu.compile_cached)
    }
    /// KV-cache bytes per cached token (all layers, k and v; static scales are not per token).
    pub fn kv_bytes_per_token(&self) -> usize {
        2 * self.cfg.num_hidden_layers * self.cfg.kv_dim() * self.dims.kv.size()
    }
    /// The KV cache element type (fp16 also stands for the fp32 mode's f32 cache).
    pub fn kv_dtype(&self) -> KvCacheDtype {
        self.spec.kv_cache
    }
    /// Whether the per-head scales of an 8-bit cache are on the device.
    pub fn has_kv_scales(&self) -> bool {
        self.kv_scales.is_some()
    }
    fn dummy_slot(&self) -> usize {
        self.opts.max_batch
    }
    fn kern(&self) -> Kernels<'_> {
        Kernels::new(&self.gpu, &self.dims)
    }
    /// A per-row field of the metadata block (`MetaLayout`): max_tokens i32 entries at `off`.
    fn meta_rows(&self, off: usize) -> Result<View<'_>> {
        self.s.meta.i32().slice(off, self.layout.max_tokens)
    }
    /// The per-sequence fields of the metadata block from sequence `first` on: max_seqs - first
    /// i32 entries each.
    fn seq_meta(&self, first: usize) -> Result<SeqMeta<'_>> {
        let (l, m) = (self.layout, self.s.meta.i32());
        let n = l.max_seqs.saturating_sub(first);
        Ok(SeqMeta {
            slot: m.slice(l.seq_slot() + first, n)?,
            start: m.slice(l.seq_start() + first, n)?,
            row0: m.slice(l.seq_row0() + first, n)?,
            n: m.slice(l.seq_n() + first, n)?,
        })
    }
    fn layer_cache(&self, layer: usize) -> Result<LayerCache<'_>> {
        LayerCache::of(&self.dims, &self.kcache, &self.vcache, layer)
    }
    /// The QKV GEMM's output `y` of a pass of `rows` rows and what its epilogue reads and writes: `layer`'s cache,
    /// the rows' positions and slots, the RoPE tables.
    fn qkv_rows<'a>(&'a self, layer: usize, y: View<'a>, rows: usize) -> Result<QkvRows<'a>> {
        let l = self.layout;
        let (pos, slot) = (self.meta_rows(l.row_pos())?, self.meta_rows(l.row_slot())?);
        Ok(QkvRows { y, cache: self.layer_cache(layer)?, pos, slot, rope: self.rope(), rows })
    }
    /// The QKV GEMM's epilogue as a kernel: RoPE on q and k, the new k/v rows into `layer`'s cache.
    fn rope_append_rows(&self, layer: Option<usize>, y: View<'_>, rows: usize) -> Result<()> {
        let layer = layer.ok_or_else(|| Error::Gpu("qkv step without a layer".into()))?;
        let (q, qa) = (self.s.q.f32(), self.act(&self.s.qa));
        let e = self.qkv_rows(layer, y, rows)?;
        // Session 6: without the act copy of q where no kernel reads it (the flash prefill
        // attentions and the decode attention read q as f32).
        if self.pf.ew && self.prefill_fa && self.dims.kv != DType::U8 && self.dims.head_dim % 4 == 0 {
            return self.kern().rope_append_p(e, q);
        }
        self.kern().rope_append(e, q, qa)
    }
    /// The decode attention kernel of a pass whose first `lead` rows decode, and its splits (blocks per (kv head,
    /// row)), before the one-row choices (attn_decode_cg, the o-fold) the Attention step makes below GEMV_MAX_T rows.
    fn decode_attn_kind(&self, lead: usize) -> (DecodeAttn, usize) {
        let c = &self.cfg;
        let want = (2 * self.gpu.sms as usize).div_ceil(lead * c.num_key_value_heads);
        let mut kind = self.attn_kernel;
        let mut ns = want.clamp(1, self.spec.nsplit().min(64));
        if let DecodeAttn::Cl { cx, .. } = kind {
            // One cluster per (kv head, row), as many blocks each as stay resident
            // together (no second wave), at most acl_csmax.
            let cs = (self.acl_slots / (lead * c.num_key_value_heads)).clamp(1, self.acl_csmax);
            if let Some(n) = self.acl_csf {
                ns = n;
            } else if cs == 1 || self.acl_forced || (self.bs1.attn_cl && lead == 1) {
                ns = cs;
                if cx && cs > 1 && !self.acl_forced {
                    kind = self.acl_fb;
                }
            } else {
                kind = DecodeAttn::Tc;
            }
        }
        (kind, ns)
    }
    /// Whether the QKV GEMM of a pass of `rows` rows leaves RoPE and the KV append to the decode attention
    /// (`attn_rope`: decode passes on the GEMM path whose attention is attn_decode_cx8).
    fn rope_in_attn(&self, decode: bool, rows: usize) -> bool {
        self.attn_rope
            && decode
            && rows > GEMV_MAX_T
            && matches!(self.decode_attn_kind(rows).0, DecodeAttn::Cl { warps: 8, cx: true, .. })
    }
    /// K rotation after the QKV step: `kv_rot` over the pass's rows (q, its act copy, the cache).
    fn kv_rot_rows(&self, layer: Option<usize>, rows: usize) -> Result<()> {
        let layer = layer.ok_or_else(|| Error::Gpu("qkv step without a layer".into()))?;
        let l = self.layout;
        let (q, qa) = (self.s.q.f32(), self.act(&self.s.qa));
        let (pos, slot) = (self.meta_rows(l.row_pos())?, self.meta_rows(l.row_slot())?);
        self.kern().kv_rot(q, qa, self.layer_cache(layer)?, pos, slot, rows)
    }
    fn rope(&self) -> Rope<'_> {
        Rope { cos: self.rope_cos.f32(), sin: self.rope_sin.f32() }
    }
    fn act<'a>(&self, b: &'a DevBuf) -> View<'a> {
        b.view(self.dims.act)
    }
    /// The residual stream of the rows still in flight: h, or hsel after the Select step.
    fn cur(&self, selected: bool) -> View<'_> {
        if selected {
            self.s.hsel.f32()
        } else {
            self.s.h.f32()
        }
    }

    fn gemv_grid(&mut self, name: &str, t: usize, smem: usize, pairs: usize, ppw: usize) -> Result<u32> {
        let key = (name.to_string(), t);
        let occ = match self.grid_cache.get(&key) {
            Some(&o) => o,
            None => {
                let o = self.gpu.occupancy(name, GEMV_THREADS, smem)?;
                self.grid_cache.insert(key, o);
                o
            }
        };
        let need = pairs.div_ceil(4 * ppw) as u32;
        Ok(need.min(self.gpu.sms * occ).max(1))
    }

    /// `spread`: one block per resident slot (at most one per tile), tiles dealt round-robin.
    fn tc_grid(&mut self, name: &str, smem: usize, tiles: usize, spread: bool) -> Result<u32> {
        let key = (name.to_string(), smem);
        let occ = match self.grid_cache.get(&key) {
            Some(&o) => o,
            None => {
                let o = self.gpu.occupancy(name, TC_THREADS, smem)?.max(1);
                self.grid_cache.insert(key, o);
                o
            }
        };
        // Whole tiles per block, balanced: ceil(tiles / resident blocks) tiles each.
        let occ = self.bs1.occ_cap.map_or(occ, |c| occ.min(c.max(1)));
        let resident = (self.gpu.sms * occ).max(1) as usize;
        if spread {
            return Ok(tiles.min(resident).max(1) as u32);
        }
        let per = tiles.div_ceil(resident).max(1);
        Ok(tiles.div_ceil(per).max(1) as u32)
    }

    /// Queues one pass over the metadata already in the device buffer: `t` rows, `nseq`
    /// sequences, longest piece `max_n`, `select_all` when every row's logits are wanted.
    fn run_pass(
        &mut self,
        t: usize,
        nseq: usize,
        max_n: usize,
        decode: bool,
        select_all: bool,
        nsel: usize,
    ) -> Result<()> {
        let c = self.cfg.clone();
        let l = self.layout;
        let act = self.dims.act.size();
        // Long prefills: attention as two batched tensor-core GEMMs around a causal softmax.
        let tc_attn =
            !decode && !self.prefill_fa && t > GEMV_MAX_T && self.s.scores.is_some() && !self.pass_seqs.is_empty();
        let attn_ptrs = if tc_attn { Some(self.upload_attn_ptrs()?) } else { None };
        let mut selected = false; // the residual rows in flight are hsel (after Select), else h
        let mut rows = t;
        let mut skip_to = 0; // steps before this one ran inside a persistent layer launch
        let mut xq_for = usize::MAX; // the step whose FP8 input the previous step wrote (swiglu_q8)
        let mut ofold: Option<(usize, usize)> = None; // (splits, record copies) of a folded one-row attention, for o
        let mut rope_y: Option<DType> = None; // the QKV output's type where its epilogue runs in the attention (attn_rope)
        for si in 0..self.steps.len() {
            if si < skip_to {
                continue;
            }
            let step = self.steps[si].clone();
            let timer = match self.profile {
                Some(_) => {
                    let t = self.gpu.timer()?;
                    t.start()?;
                    Some(t)
                }
                None => None,
            };
            match step {
                Step::Embed => {
                    let k = self.kern();
                    self.timed("embed", || {
                        k.embed(self.meta_rows(l.tokens())?, self.act(&self.embed), self.s.h.f32(), rows)
                    })?;
                }
                Step::Select => {
                    if !select_all {
                        let k = self.kern();
                        self.timed("select", || {
                            k.gather_rows(
                                self.cur(selected),
                                rows,
                                self.meta_rows(l.out_rows())?,
                                self.s.hsel.f32(),
                                nsel,
                            )
                        })?;
                        selected = true;
                        rows = nsel;
                        // Selected rows of a prefill pass keep their positions only for the head,
                        // which does not read them.
                    }
                }
                Step::Attention { layer } => {
                    let k = self.kern();
                    let cache = self.layer_cache(layer)?;
                    let (q, out) = (self.s.q.f32(), self.act(&self.s.xact));
                    // Rows 0..lead are one-token pieces (all rows of a decode pass; the leading
                    // decodes of a mixed paged step) and run the decode attention.
                    let lead = if decode {
                        rows
                    } else if attn_ptrs.is_some() {
                        0
                    } else {
                        self.lead_decode.min(nseq)
                    };
                    if lead > 0 {
                        // Splits per (sequence, kv head): about two blocks per SM in all, at most
                        // one per cache chunk (and 64, the combine's bound); fixed per bucket, so a
                        // captured graph stays valid as the sequences grow. (attn_decode_v1 always
                        // runs nsplit.)
                        let (mut kind, mut ns) = self.decode_attn_kind(lead);
                        let cg_rows = (self.bs1.attn_cg && lead <= GEMV_MAX_T)
                            || (self.bs1.attn_mcg && (2..=GEMV_MAX_T).contains(&lead));
                        if let (Some((cg, slots)), true) = (self.acg, cg_rows) {
                            kind = cg;
                            // Not more blocks than stay resident together (one wave). One row with the
                            // combine folded into o (`ocomb`): one 16-key tile per warp (`cg1_splits`).
                            let fit = (slots / (lead * c.num_key_value_heads)).max(1);
                            let per = if lead == 1 && self.bs1.ocomb {
                                cg1_splits(self.opts.max_seq, self.spec.nsplit())
                            } else {
                                cg_splits(self.opts.max_seq, self.spec.nsplit())
                            };
                            ns = per.min(fit);
                        }
                        if let (DecodeAttn::Tc | DecodeAttn::Cg { .. }, Some(n)) = (kind, self.bs1.attn_ns) {
                            ns = n.clamp(1, self.spec.nsplit().min(64));
                        }
                        // bs1 switch `ocomb`: a one-row decode pass folds the split combine into the
                        // o GEMV's prologue (tcc_*), with at most the splits whose records fit there.
                        let fold = self.bs1.ocomb
                            && decode
                            && rows == 1
                            && matches!(kind, DecodeAttn::Tc | DecodeAttn::Cg { .. })
                            && self.o_fold_ok(si);
                        if fold {
                            ns = ns.min(self.tcc_ns_max);
                        }
                        let (part, counters) = (self.s.part.f32(), self.s.counters.i32());
                        let (pos, slot) = (self.meta_rows(l.row_pos())?, self.meta_rows(l.row_slot())?);
                        let reps = if fold { self.bs1.fold_reps.unwrap_or(1).clamp(1, FOLD_REPS_MAX) } else { 0 };
                        // TRTFORGE_ATTN_REPS (diagnostic) repeats a decode pass's launch; `reps` above is the
                        // o-fold's, not this.
                        let launches = if decode { self.attn_reps } else { 1 };
                        for _ in 0..launches {
                            match rope_y {
                                // The QKV step left its epilogue to this launch (attn_rope): the same plan.
                                Some(t) if decode && !fold => self.timed("attn_decode", || {
                                    let (y, rope) = (self.s.y.view(t), self.rope());
                                    let e = QkvRows { y, cache, pos, slot, rope, rows: lead };
                                    k.attn_decode_rope(kind, ns, e, out)
                                })?,
                                Some(_) => {
                                    return Err(Error::Gpu("a fused-RoPE QKV step before a folded attention".into()))
                                }
                                None => self.timed("attn_decode", || {
                                    k.attn_decode(kind, ns, q, cache, out, part, counters, pos, slot, lead, reps)
                                })?,
                            }
                        }
                        if let (0, Some(t)) = (launches, rope_y) {
                            // TRTFORGE_ATTN_REPS=0 skips the attention (a diagnostic): the new K / V rows still go in.
                            self.rope_append_rows(Some(layer), self.s.y.view(t), rows)?;
                        }
                        rope_y = None;
                        ofold = fold.then_some((ns, reps));
                    }
                    if !decode {
                        if let Some(table) = &attn_ptrs {
                            self.tc_attention(layer, table)?;
                        } else if lead < nseq {
                            // The prefill pieces: sequences lead..nseq.
                            let seqs = self.seq_meta(lead)?;
                            if self.prefill_fa && self.pf.fa {
                                let fg = self.pf.fg;
                                self.timed(Kernels::prefill_flash_name(fg), || {
                                    k.attn_prefill_flash(fg, q, cache, out, seqs, nseq - lead, max_n, rows)
                                })?;
                            } else if self.prefill_fa {
                                self.timed("attn_prefill_tc", || {
                                    k.attn_prefill_tc(q, cache, out, seqs, nseq - lead, max_n, rows)
                                })?;
                            } else {
                                k.attn_prefill(q, cache, out, seqs, nseq - lead, max_n, rows)?;
                            }
                        }
                    }
                }
                Step::Linear(_)
                    if decode
                        && rows <= GEMV_MAX_T
                        && !selected
                        && self.persist.as_ref().is_some_and(|p| p.starts.get(si) == Some(&true)) =>
                {
                    self.launch_persist(si, rows)?;
                    skip_to = si + 5;
                }
                Step::Linear(ls)
                    if decode
                        && rows == 1
                        && !selected
                        && ls.role == Role::GateUp
                        && self.gud.is_some()
                        && ofold.is_none()
                        && self.fd_pair(si) =>
                {
                    self.launch_gud(si, &ls)?;
                    skip_to = si + 2;
                }
                Step::Linear(ls) => {
                    let lin =
                        self.linears[si].as_ref().ok_or_else(|| Error::Gpu("linear step without weights".into()))?;
                    let (fmt, n, kdim) = (lin.fmt, lin.n, lin.k);
                    let tcg = lin.tcg.filter(|_| self.use_tcg && rows > GEMV_MAX_T && rows <= TCG_MAX_T);
                    let tcg3 = lin.tcg3.filter(|_| rows > GEMV_MAX_T && rows <= TCG_MAX_T);
                    let tcg4 = lin.tcg4.is_some() && rows > GEMV_MAX_T && rows <= TCG_MAX_T;
                    if tcg4 {
                        self.launch_tcg4(si, &ls, rows, selected, !decode && !self.prefill_fa)?;
                    } else if let Some(sh) = tcg3 {
                        self.launch_tcg3(si, &ls, sh, rows, selected, !decode && !self.prefill_fa)?;
                    } else if let Some(sh) = tcg {
                        self.launch_tcg(si, &ls, sh, rows, selected, !decode && !self.prefill_fa)?;
                    } else if rows <= GEMV_MAX_T {
                        let tc = self.use_tc && fmt.has_tc() && !self.spec.act_f32 && n % 16 == 0;
                        let comb = ofold.take();
                        if comb.is_some() && !(tc && rows == 1 && ls.role == Role::O) {
                            return Err(Error::Gpu(format!(
                                "{} step after a folded decode attention is not the one-row tcc_* o GEMV",
                                ls.role.tag()
                            )));
                        }
                        let mut tcc_cs = 1u32;
                        let (kind, grid) = if let Some((ns, _)) = comb {
                            let name = tcc_name(ls.role, fmt);
                            let smem = tcc_smem(c.q_dim(), c.num_attention_heads, c.head_dim, ns);
                            let grid = match self.bs1.tcc_tiles {
                                Some(per) => (n / 16).div_ceil(per).max(1) as u32,
                                None => self.tc_grid(&name, smem, n / 16, false)?,
                            };
                            // bs1 switch `oclN`: clusters of the largest power of two <= N dividing the grid.
                            if let (Some(want), true) = (self.bs1.o_cluster, self.gpu.cc.0 >= 9) {
                                tcc_cs =
                                    [16u32, 8, 4, 2, 1].into_iter().find(|&x| x <= want && grid % x == 0).unwrap_or(1);
                            }
                            (GemvKind::TcC, grid)
                        } else if tc {
                            let (kind, name) = if self.bs1.tcm {
                                (GemvKind::Tcm, tcm_name(ls.role, fmt))
                            } else if self.bs1.qkv_r2_rows(rows) && self.spec.has_tcr2(ls.role, fmt) {
                                (GemvKind::TcR2, tcr2_name(ls.role, fmt))
                            } else if rows == 1 && self.spec.has_tcr1(ls.role, fmt) {
                                (GemvKind::TcR1, tcr1_name(ls.role, fmt))
                            } else {
                                (GemvKind::Tc, tc_name(ls.role, fmt))
                            };
                            let spread = kind != GemvKind::Tcm && self.bs1.spread_rows(rows);
                            (kind, self.tc_grid(&name, tc_smem(GEMV_MAX_T, kdim), n / 16, spread)?)
                        } else {
                            let mt = gemv_mt(rows).unwrap_or(GEMV_MAX_T);
                            let name = gemv_name(ls.role, fmt, mt);
                            let grid = self.gemv_grid(&name, mt, mt * kdim * act, n / 2, fmt.pairs_per_warp())?;
                            (GemvKind::Cuda { mt }, grid)
                        };
                        let lin = self.linears[si]
                            .as_ref()
                            .ok_or_else(|| Error::Gpu("linear step without weights".into()))?;
                        let mut io = self.gemv_io(&ls, self.cur(selected))?;
                        io.comb = comb.map(|(ns, reps)| (self.s.part.f32(), ns, reps, tcc_cs));
                        self.timed("gemv", || self.kern().gemv(kind, ls.role, grid, &lin.weights(), &io, rows))?;
                    } else if let (Some(f8), true) = (lin.fp8.as_ref(), self.fp8_gemm) {
                        // FP8 GEMM path (W8A8): the input quantized to E4M3 by the kernel that makes
                        // it (RMSNorm, SwiGLU of the previous step) or by quant_e4m3_rows (attention
                        // output), then cuBLASLt's E4M3 GEMM with per-channel weight and per-row
                        // input scales, then the epilogue as a kernel.
                        let k = self.kern();
                        let (cur, y) = (self.cur(selected), self.s.y.f32());
                        let (xq, xs) = self.s.xq.as_ref().ok_or_else(|| Error::Gpu("no FP8 input scratch".into()))?;
                        let (xq, xs) = (xq.view(DType::U8), xs.f32());
                        let sstat = f8.sstat.as_ref().map(|b| b.f32());
                        if let Some(p) = ls.norm {
                            let nw =
                                self.norms.get(&p).ok_or_else(|| Error::Gpu("norm step without weights".into()))?;
                            self.timed("rmsnorm_q8", || k.rmsnorm_q8(cur, nw.f32(), xq, xs, sstat, rows))?;
                        } else if xq_for != si {
                            self.timed("quant_e4m3", || {
                                k.quant_e4m3_rows(self.act(&self.s.xact), xq, xs, sstat, rows, kdim)
                            })?;
                        }
                        let (dst, acc) = match ls.role {
                            Role::Qkv | Role::GateUp => (y, false),
                            Role::O | Role::Down => (cur, true),
                            Role::Head => (self.s.logits.f32(), false),
                        };
                        // o/down accumulate into h; their tuning writes y (free then).
                        let scratch = if acc { y } else { dst };
                        let (wv, wsv, o) = (lin.data.view(DType::U8), f8.wscale.f32(), self.fp8_scales);
                        if self.gpu.f8g && f8g_kernel(rows).is_some() && f8g_fits(n, kdim) {
                            self.timed("f8g", || k.f8g(rows, n, kdim, wv, wsv, xq, xs, dst, acc))?;
                        } else if o == LtScale::OuterVec {
                            self.timed("gemm_fp8", || {
                                k.gemm_fp8(rows, n, kdim, wv, wsv, o, xq, xs, o, dst, acc, scratch)
                            })?;
                        } else {
                            k.gemm_fp8(rows, n, kdim, wv, wsv, o, xq, xs, o, y, false, y)?;
                            k.fp8_rescale(y, xs, wsv, dst, acc, rows, n)?;
                        }
                        match ls.role {
                            Role::Qkv if self.rope_in_attn(decode, rows) => rope_y = Some(y.dtype()),
                            Role::Qkv => self.timed("rope_append", || self.rope_append_rows(ls.layer, y, rows))?,
                            Role::GateUp => {
                                // The down projection's FP8 input straight from SwiGLU when it runs
                                // the FP8 GEMM too.
                                let next =
                                    self.linears.get(si + 1).and_then(|x| x.as_ref()).and_then(|x| x.fp8.as_ref());
                                match next {
                                    Some(d8) => {
                                        self.timed("swiglu_q8", || {
                                            k.swiglu_q8(y, xq, xs, d8.sstat.as_ref().map(|b| b.f32()), rows)
                                        })?;
                                        xq_for = si + 1;
                                    }
                                    None => k.swiglu(y, self.act(&self.s.xact), rows)?,
                                }
                            }
                            _ => {}
                        }
                    } else {
                        // GEMM path: normalized input, then cuBLAS, then the epilogue as a kernel.
                        let k = self.kern();
                        let (cur, xact) = (self.cur(selected), self.act(&self.s.xact));
                        if let Some(p) = ls.norm {
                            let nw =
                                self.norms.get(&p).ok_or_else(|| Error::Gpu("norm step without weights".into()))?;
                            if self.pf.rmsb {
                                self.timed("rmsnorm_b", || k.rmsnorm_b(cur, nw.f32(), xact, rows))?;
                            } else if self.pf.ew && self.dims.hidden % 128 == 0 {
                                self.timed("rmsnorm_v", || k.rmsnorm_v(cur, nw.f32(), xact, rows))?;
                            } else {
                                self.timed("rmsnorm", || k.rmsnorm(cur, nw.f32(), xact, rows))?;
                            }
                        }
                        // Paged (serve) passes of any row count run their GEMMs at a bucketed row
                        // count (`sched::gemm_rows`; the extra rows are never read), so cuBLAS
                        // meets a few shapes, all met once at server start (`warm_gemms`).
                        let grows =
                            if self.gemm_pad && !decode { sched::gemm_rows(rows, self.opts.max_tokens) } else { rows };
                        let y = self.timed(prefill::gemm_label(ls.role), || {
                            self.linear_gemm(si, &ls, grows, selected, decode)
                        })?;
                        match ls.role {
                            Role::Qkv if self.rope_in_attn(decode, rows) => rope_y = Some(y.dtype()),
                            Role::Qkv => self.timed("rope_append", || self.rope_append_rows(ls.layer, y, rows))?,
                            Role::GateUp if self.pf.ew && self.dims.inter % 4 == 0 => {
                                self.timed("swiglu_v", || k.swiglu_v(y, xact, rows))?
                            }
                            Role::GateUp => self.timed("swiglu", || k.swiglu(y, xact, rows))?,
                            _ => {}
                        }
                    }
                    // K rotation (kv_rotate): whichever kernel ran the QKV step parked k; rotate it
                    // into the cache and rotate q alike.
                    if ls.role == Role::Qkv && self.kv_rot.is_some() {
                        self.timed("kv_rot", || self.kv_rot_rows(ls.layer, rows))?;
                    }
                }
            }
            if let Some(t) = timer {
                let ms = t.stop_ms()?;
                let label = step_label(&self.steps[si]);
                if let Some(p) = self.profile.as_mut() {
                    match p.iter_mut().find(|e| e.0 == label) {
                        Some(e) => e.1 += ms,
                        None => p.push((label, ms)),
                    }
                }
            }
        }
        Ok(())
    }

    /// The GEMM of linear step `si` (`ls`) over `rows` rows of the normalized input `xact`: qkv
    /// and gate/up into y (returned, for their epilogue), o/down accumulated into the residual
    /// stream in flight, the head into the logits.
    fn linear_gemm(&self, si: usize, ls: &LinearStep, rows: usize, selected: bool, decode: bool) -> Result<View<'_>> {
        let lin = self.linears[si].as_ref().ok_or_else(|| Error::Gpu("linear step without weights".into()))?;
        let (fmt, n, kdim) = (lin.fmt, lin.n, lin.k);
        let k = self.kern();
        let (cur, xact, y) = (self.cur(selected), self.act(&self.s.xact), self.s.y.f32());
        // Session 37 (the default on cc 9.0 since session 38, wq::Mode): decode passes of 9..=64 rows of int8 /
        // int4 g128 / fp8 layer linears (by default gate/up and down; int4 from 24 rows, int8 / fp8 from 33) read
        // their codes through the quantized decode GEMM (wq.rs) instead of the f16 copy; qkv and gate/up write y,
        // o / down add into the residual stream.
        let wq_rows = decode && rows > GEMV_MAX_T && rows <= wq::MAX_ROWS && xact.dtype() == DType::F16;
        if let Some(q) = lin.wq.as_ref().filter(|q| wq_rows && rows >= q.min_rows) {
            let sc = q.scales.as_ref().or(lin.scales.as_ref()).map(|b| b.view(DType::F16));
            let (dst, acc) = match ls.role {
                Role::O | Role::Down => (cur, true),
                _ => (y, false),
            };
            k.wq(fmt, rows, n, kdim, q.data.view(DType::U8), sc, xact, dst, acc, q.shape, q.cm)?;
            return Ok(dst);
        }
        let w = match (fmt, &lin.shadow) {
            (WeightFormat::F32, _) => lin.data.view(DType::F32),
            (WeightFormat::F16, _) => lin.data.view(DType::F16),
            (WeightFormat::I8 | WeightFormat::I4 { .. } | WeightFormat::F8, Some(shadow)) => shadow.view(DType::F16),
            (WeightFormat::I8 | WeightFormat::I4 { .. } | WeightFormat::F8, None) => {
                let dq = self.s.wdeq.as_ref().ok_or_else(|| Error::Gpu("no dequant scratch".into()))?;
                let dq = dq.view(DType::F16);
                k.dequant(&lin.weights(), dq)?;
                dq
            }
        };
        let (dst, beta) = match ls.role {
            Role::Qkv | Role::GateUp => (y, 0.0),
            Role::O | Role::Down => (cur, 1.0),
            Role::Head => (self.s.logits.f32(), 0.0),
        };
        // cuBLASLt (autotuned per shape) for f16 operands unless TRTFORGE_GEMM=cublas;
        // qkv and gate/up may write y as f16 (TRTFORGE_GEMM_F16OUT=1) for their
        // epilogue kernels. o/down accumulate into h; their tuning writes y (free then).
        // Session 7: non-decode passes also through cuBLASLt with TRTFORGE_PREFILL_LT=1.
        let lt =
            (self.gemm_lt || (decode && rows >= self.gemm_lt_decode) || (self.pf.lt && !decode && self.gpu.has_lt()))
                && w.dtype() == DType::F16
                && xact.dtype() == DType::F16;
        // Session 6: f16 qkv / gate-up outputs (TRTFORGE_PREFILL_F16Y); session 7: in decode passes
        // too, their GEMV rows rounding at the same point (c_y16).
        let f16y = self.pf.f16y && matches!(ls.role, Role::Qkv | Role::GateUp) && xact.dtype() == DType::F16;
        if f16y && !lt {
            let y16 = self.s.y.view(DType::F16);
            k.gemm_h(rows, n, kdim, w, xact, y16)?;
            return Ok(y16);
        }
        if lt {
            let f16o = (self.gemm_f16out || f16y) && matches!(ls.role, Role::Qkv | Role::GateUp);
            let dst = if f16o { self.s.y.view(DType::F16) } else { dst };
            let scratch = if beta == 0.0 { dst } else { y };
            k.gemm_lt(rows, n, kdim, w, xact, dst, beta != 0.0, scratch)?;
            Ok(dst)
        } else {
            k.gemm(rows, n, kdim, w, xact, dst, beta)?;
            Ok(y)
        }
    }

    /// Paged engines (serve): runs every GEMM shape a non-decode pass of `rows` rows meets
    /// (`sched::gemm_rows` buckets), so cuBLAS picks (and cuBLASLt tunes) its algorithms and loads
    /// its kernels before the first request instead of inside a step. Writes only scratch, the
    /// residual stream and the logits.
    fn warm_gemms(&mut self, rows: usize) -> Result<()> {
        let rows = rows.min(self.opts.max_tokens);
        let mut seen = Vec::new();
        for si in 0..self.steps.len() {
            let Step::Linear(ls) = self.steps[si].clone() else { continue };
            let Some(lin) = self.linears[si].as_ref() else { continue };
            let key = (ls.role, lin.n, lin.k);
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            self.linear_gemm(si, &ls, rows, false, false)?;
        }
        Ok(())
    }

    /// Whether step `si` (gate/up) and the next (down) can run as one `tcd_*` launch: f16 weights
    /// both, the down step of the same layer.
    fn fd_pair(&self, si: usize) -> bool {
        let (Some(Step::Linear(g)), Some(Step::Linear(d))) = (self.steps.get(si), self.steps.get(si + 1)) else {
            return false;
        };
        let lin = |i: usize| self.linears.get(i).and_then(|x| x.as_ref());
        // The column-tile copy exists for f16 down weights only.
        g.role == Role::GateUp
            && d.role == Role::Down
            && g.layer == d.layer
            && d.norm.is_none()
            && lin(si).is_some_and(|l| l.fmt == WeightFormat::F16)
            && lin(si + 1).is_some_and(|l| l.fd.is_some())
    }

    /// One-row gate/up + down as one `tcd_*` launch (`TRTFORGE_GUD=1`), adding into h.
    fn launch_gud(&self, si: usize, ls: &LinearStep) -> Result<()> {
        let (grid, cnt) = self.gud.as_ref().ok_or_else(|| Error::Gpu("no tcd_* launch".into()))?;
        let gu = self.linears[si].as_ref().ok_or_else(|| Error::Gpu("gate/up step without weights".into()))?;
        let dn = self.linears[si + 1].as_ref().ok_or_else(|| Error::Gpu("down step without weights".into()))?;
        let fd = dn.fd.as_ref().ok_or_else(|| Error::Gpu("down step without its column-tile copy".into()))?;
        let io = self.gemv_io(ls, self.cur(false))?;
        self.timed("gemv", || {
            self.kern().gemv_fd(*grid, &gu.weights(), &dn.weights(), fd.view(DType::F16), &io, cnt.i32())
        })
    }

    /// The operands of linear step `ls` as a GEMV runs it on residual stream `h`: its RMSNorm
    /// prologue's weight, the activation buffer, its epilogue's output (q, h itself or the logits),
    /// the layer's cache and the pass's row metadata.
    fn gemv_io<'s>(&'s self, ls: &LinearStep, h: View<'s>) -> Result<GemvIo<'s>> {
        let l = self.layout;
        let out = match ls.role {
            Role::Qkv => Some(self.s.q.f32()),
            Role::O | Role::Down => Some(h),
            Role::Head => Some(self.s.logits.f32()),
            Role::GateUp => None,
        };
        Ok(GemvIo {
            h,
            norm_w: ls.norm.and_then(|p| self.norms.get(&p)).map(|b| b.f32()),
            x: self.act(&self.s.xact),
            out,
            cache: ls.layer.map(|l| self.layer_cache(l)).transpose()?,
            pos: self.meta_rows(l.row_pos())?,
            slot: self.meta_rows(l.row_slot())?,
            rope: self.rope(),
            comb: None,
        })
    }

    /// Whether the attention step `si` may fold its combine into the o GEMV after it (`tcc_*`): the
    /// next step is the o projection with tensor-core weights that have a `tcc_*` instance.
    fn o_fold_ok(&self, si: usize) -> bool {
        if self.tcc_ns_max == 0 || !self.use_tc || self.spec.act_f32 {
            return false;
        }
        match (self.steps.get(si + 1), self.linears.get(si + 1).and_then(|l| l.as_ref())) {
            (Some(Step::Linear(ls)), Some(lin)) => {
                ls.role == Role::O
                    && lin.fmt.has_tc()
                    && lin.n % 16 == 0
                    && self.spec.tcc_roles().contains(&(Role::O, lin.fmt))
            }
            _ => false,
        }
    }

    /// Steps si .. si + 5 (QKV, attention, O, gate/up, down of one layer) of a decode pass of
    /// `rows` rows as one `persist_layer` launch.
    fn launch_persist(&self, si: usize, rows: usize) -> Result<()> {
        let p = self.persist.as_ref().ok_or_else(|| Error::Gpu("no persistent layer".into()))?;
        let h = self.s.h.f32();
        let mut ios = Vec::with_capacity(4);
        let mut ws = Vec::with_capacity(4);
        for i in [si, si + 2, si + 3, si + 4] {
            let (Step::Linear(ls), Some(lin)) = (&self.steps[i], self.linears[i].as_ref()) else {
                return Err(Error::Gpu("persistent layer: not a linear step".into()));
            };
            ios.push(self.gemv_io(ls, h)?);
            ws.push(lin.weights());
        }
        let c = &self.cfg;
        // Splits per (row, kv head): about one attention block per persistent block.
        let ns = (p.grid as usize).div_ceil(rows * c.num_key_value_heads).clamp(1, self.spec.nsplit().min(64));
        let att = PersistAttn {
            q: self.s.q.f32(),
            out: self.act(&self.s.xact),
            part: self.s.part.f32(),
            counters: self.s.counters.i32(),
            ns,
        };
        let lin = [(&ws[0], &ios[0]), (&ws[1], &ios[1]), (&ws[2], &ios[2]), (&ws[3], &ios[3])];
        let layer = match &self.steps[si] {
            Step::Linear(ls) => ls.layer.unwrap_or(0),
            _ => 0,
        };
        let stamps = match &p.stamps {
            Some(b) if self.profile.is_some() => {
                Some(b.view(DType::U64).slice(layer * PERSIST_NSTAMP, PERSIST_NSTAMP)?)
            }
            _ => None,
        };
        self.kern().persist_layer(p.grid, p.smem, lin, &att, p.bar.view(DType::U64), stamps, rows)
    }

    /// One batched tensor-core GEMM (`tcg_*`) of linear step `si` over `rows` (GEMV_MAX_T,
    /// TCG_MAX_T] rows: RMSNorm into xact first where the step has one, then the GEMM with its
    /// fused epilogue. Gate/up writes m into `y` (xact is its input) and down reads it from there;
    /// `want_qa` also writes q as act into `qa` (prefill passes of the cuBLAS attention).
    fn launch_tcg(
        &self,
        si: usize,
        ls: &LinearStep,
        sh: TcgShape,
        rows: usize,
        selected: bool,
        want_qa: bool,
    ) -> Result<()> {
        let lin = self.linears[si].as_ref().ok_or_else(|| Error::Gpu("linear step without weights".into()))?;
        let (io, out_act) = self.tcg_io(ls, rows, selected, want_qa)?;
        let ws = self.tcg_ws.as_ref().ok_or_else(|| Error::Gpu("no tcg workspace".into()))?;
        let cnt = self.tcg_cnt.as_ref().ok_or_else(|| Error::Gpu("no tcg counters".into()))?;
        let bufs = TcgBufs { out_act, ws: ws.f32(), cnt: cnt.i32() };
        self.kern().tcg(ls.role, sh, &lin.weights(), &io, &bufs, rows)
    }

    /// What `tcg` and `tcg3` launches share: RMSNorm into xact first where the step has one, then the
    /// GEMM's inputs / outputs by role (`want_qa`: q also as act for the cuBLAS prefill attention).
    fn tcg_io(
        &self,
        ls: &LinearStep,
        rows: usize,
        selected: bool,
        want_qa: bool,
    ) -> Result<(GemvIo<'_>, Option<View<'_>>)> {
        let k = self.kern();
        let l = self.layout;
        let (cur, xact, y) = (self.cur(selected), self.act(&self.s.xact), self.act(&self.s.y));
        if let Some(p) = ls.norm {
            let nw = self.norms.get(&p).ok_or_else(|| Error::Gpu("norm step without weights".into()))?;
            k.rmsnorm(cur, nw.f32(), xact, rows)?;
        }
        let (x, out, out_act) = match ls.role {
            Role::Qkv => (xact, Some(self.s.q.f32()), want_qa.then(|| self.act(&self.s.qa))),
            Role::O => (xact, Some(cur), None),
            Role::GateUp => (xact, None, Some(y)),
            Role::Down => (y, Some(cur), None),
            Role::Head => (xact, Some(self.s.logits.f32()), None),
        };
        let io = GemvIo {
            h: cur,
            norm_w: None,
            x,
            out,
            cache: ls.layer.map(|l| self.layer_cache(l)).transpose()?,
            pos: self.meta_rows(l.row_pos())?,
            slot: self.meta_rows(l.row_slot())?,
            rope: self.rope(),
            comb: None,
        };
        Ok((io, out_act))
    }

    /// One session-6 batched decode GEMM (`tcg3_*`) of linear step `si` over `rows` (GEMV_MAX_T,
    /// TCG_MAX_T] rows: RMSNorm into xact first where the step has one, then the GEMM with its fused
    /// epilogue; buffers as [`Self::launch_tcg`].
    fn launch_tcg3(
        &self,
        si: usize,
        ls: &LinearStep,
        sh: Tcg3Shape,
        rows: usize,
        selected: bool,
        want_qa: bool,
    ) -> Result<()> {
        let lin = self.linears[si].as_ref().ok_or_else(|| Error::Gpu("linear step without weights".into()))?;
        let (io, out_act) = self.tcg_io(ls, rows, selected, want_qa)?;
        self.kern().tcg3(ls.role, sh, &lin.weights(), &io, out_act, rows)
    }

    /// One wgmma batched decode GEMM (`tcg4_*`, session 15's v3) of linear step `si` over `rows`
    /// (GEMV_MAX_T, TCG_MAX_T] rows, on the linear's packed f16 copy; buffers as [`Self::launch_tcg`].
    fn launch_tcg4(&self, si: usize, ls: &LinearStep, rows: usize, selected: bool, want_qa: bool) -> Result<()> {
        let lin = self.linears[si].as_ref().ok_or_else(|| Error::Gpu("linear step without weights".into()))?;
        let (packed, shapes) = lin.tcg4.as_ref().ok_or_else(|| Error::Gpu("no tcg4 weights".into()))?;
        let nt = tcg4_nt(rows).ok_or_else(|| Error::Gpu(format!("tcg4: {rows} rows")))?;
        let sh = *shapes.iter().find(|s| s.nt == nt).ok_or_else(|| Error::Gpu(format!("tcg4: no shape for {nt}")))?;
        let (io, out_act) = self.tcg_io(ls, rows, selected, want_qa)?;
        let w = Weights { fmt: WeightFormat::F16, n: lin.n, k: lin.k, data: packed, scales: None };
        self.kern().tcg4(ls.role, sh, &w, &io, out_act, rows)
    }

    /// Times each step kind of an eager decode step of `b` sequences (slots 0..b at their current
    /// lengths), averaged over `reps`; ms per step kind, summed over layers.
    pub fn profile_decode(&mut self, b: usize, reps: usize) -> Result<Vec<(String, f64)>> {
        self.gpu.bind()?;
        let toks: Vec<[u32; 1]> = (0..b).map(|i| [3 + i as u32]).collect();
        let pieces: Vec<sched::Piece> = (0..b)
            .map(|i| sched::Piece { chunk: i, slot: i, start: self.lens[i], from: 0, n: 1, out: vec![0] })
            .collect();
        let m = PassMeta::build(&pieces, |i| &toks[i][..]);
        self.profile_meta(&m, reps)
    }

    /// The metadata of one prefill pass of `prompt` into slot 0 (from an empty cache), for the profiles.
    fn prefill_meta(&self, prompt: &[u32]) -> Result<PassMeta> {
        if prompt.is_empty() || prompt.len() > self.opts.max_tokens.min(self.opts.max_seq) {
            return Err(Error::Invalid("prompt does not fit one pass".into()));
        }
        let pieces =
            [sched::Piece { chunk: 0, slot: 0, start: 0, from: 0, n: prompt.len(), out: vec![prompt.len() - 1] }];
        Ok(PassMeta::build(&pieces, |_| prompt))
    }

    /// Like `profile_decode` for a prefill of `prompt` into slot 0 (from an empty cache).
    pub fn profile_prefill(&mut self, prompt: &[u32], reps: usize) -> Result<Vec<(String, f64)>> {
        self.gpu.bind()?;
        let m = self.prefill_meta(prompt)?;
        self.profile_meta(&m, reps)
    }

    /// The session-6 prefill switches in use.
    pub fn prefill_opts(&self) -> prefill::PrefillOpts {
        self.pf
    }

    /// Sets the session-6 prefill switches (each only where this engine supports it:
    /// `PrefillOpts::supported`); returns what is in use. Drops captured prefill and decode graphs.
    pub fn set_prefill_opts(&mut self, o: prefill::PrefillOpts) -> Result<prefill::PrefillOpts> {
        let pf = o.supported(&self.spec, self.prefill_fa, self.opts.paged_blocks.is_some());
        // f16y also sets where the GEMV paths round (c_y16) and the decode GEMM path's output
        // type, which the captured decode graphs bake in (like `set_bs1`'s constants).
        self.gpu.bind()?;
        self.gpu.sync()?;
        self.gpu.set_const_i32("c_y16", pf.f16y as i32)?;
        self.pf = pf;
        self.pf_graphs.clear();
        self.clear_decode_graphs();
        Ok(self.pf)
    }

    /// Runs `f` (one kernel launch) between two events of the fine profile when it is on.
    fn timed<R>(&self, label: &'static str, f: impl FnOnce() -> Result<R>) -> Result<R> {
        let i = match self.fine.borrow_mut().as_mut() {
            Some(fp) => Some(fp.begin(&self.gpu, label)?),
            None => None,
        };
        let r = f()?;
        if let (Some(i), Some(fp)) = (i, self.fine.borrow_mut().as_mut()) {
            fp.end(i)?;
        }
        Ok(r)
    }

    /// Per-kernel times of an eager prefill of `prompt` into slot 0 without synchronizing between
    /// kernels (events around each launch, read after the pass): ms per kernel kind summed over
    /// layers and averaged over `reps`, plus "span" (first to last event of the pass), "gaps"
    /// (between timed launches: GPU idle or untimed work) and "wall" (host time of the pass up to
    /// its synchronization).
    pub fn profile_prefill_fine(&mut self, prompt: &[u32], reps: usize) -> Result<Vec<(String, f64)>> {
        self.gpu.bind()?;
        let m = self.prefill_meta(prompt)?;
        self.put_meta(&m)?;
        self.set_pass_seqs(&m);
        let (t, nseq, nsel) = (m.rows(), m.seq_n.len(), m.out_rows.len());
        let all = m.selects_all();
        self.run_pass(t, nseq, prompt.len(), false, all, nsel)?; // warm
        self.gpu.sync()?;
        *self.fine.borrow_mut() = Some(prefill::FineProf::default());
        let mut wall = 0.0;
        let mut r = Ok(());
        for _ in 0..reps {
            let t0 = std::time::Instant::now();
            let span = self.fine.borrow_mut().as_mut().map(|fp| fp.begin(&self.gpu, "span")).transpose();
            r = span.and_then(|span| {
                self.run_pass(t, nseq, prompt.len(), false, all, nsel)?;
                if let (Some(i), Some(fp)) = (span, self.fine.borrow_mut().as_mut()) {
                    fp.end(i)?;
                }
                self.gpu.sync()
            });
            wall += t0.elapsed().as_secs_f64() * 1e3;
            if r.is_err() {
                break;
            }
            if let Some(fp) = self.fine.borrow_mut().as_mut() {
                fp.read_pass()?;
            }
        }
        let fp = self.fine.borrow_mut().take();
        r?;
        let fp = fp.unwrap_or_default();
        let n = fp.passes.max(1) as f64;
        let mut out: Vec<(String, f64)> = fp.sums.into_iter().map(|(k, v)| (k, v / n)).collect();
        out.push(("wall".into(), wall / n));
        Ok(out)
    }

    fn set_pass_seqs(&mut self, m: &PassMeta) {
        self.pass_seqs = (0..m.seq_n.len())
            .map(|i| (m.seq_slot[i] as usize, m.seq_start[i] as usize, m.seq_row0[i] as usize, m.seq_n[i] as usize))
            .collect();
    }

    fn profile_meta(&mut self, m: &PassMeta, reps: usize) -> Result<Vec<(String, f64)>> {
        self.put_meta(m)?;
        self.set_pass_seqs(m);
        let (t, nseq) = (m.rows(), m.seq_n.len());
        let max_n = m.seq_n.iter().copied().max().unwrap_or(1) as usize;
        let (dec, all, nsel) = (m.is_decode(), m.selects_all(), m.out_rows.len());
        self.run_pass(t, nseq, max_n, dec, all, nsel)?; // warm
        self.profile = Some(vec![]);
        let mut r = Ok(());
        for _ in 0..reps {
            if let Some(b) = self.persist.as_ref().and_then(|p| p.stamps.as_ref()) {
                self.gpu.memset0(b)?;
            }
            r = self.run_pass(t, nseq, max_n, dec, all, nsel);
            if r.is_err() {
                break;
            }
        }
        let mut p = self.profile.take().unwrap_or_default();
        r?;
        for e in p.iter_mut() {
            e.1 /= reps as f64;
        }
        p.extend(self.persist_phases()?);
        Ok(p)
    }

    /// The persistent layers' phase times of the last profiled pass (ms summed over layers) from
    /// their %globaltimer stamps (TRTFORGE_PERSIST_STAMPS=1): each GEMV / attention phase up to its
    /// slowest block, and each barrier from that block's arrival to block 0 leaving it.
    fn persist_phases(&self) -> Result<Vec<(String, f64)>> {
        let Some(b) = self.persist.as_ref().and_then(|p| p.stamps.as_ref()) else { return Ok(vec![]) };
        let mut st = vec![0u64; self.cfg.num_hidden_layers * PERSIST_NSTAMP];
        self.gpu.dtoh(b, 0, &mut st)?;
        const NAMES: [&str; 9] = ["qkv", "bar1", "attn", "bar2", "o", "bar3", "gateup", "bar4", "down"];
        let mut sums = [0f64; 9];
        for l in st.chunks(PERSIST_NSTAMP).filter(|l| l[0] != 0) {
            for (i, s) in sums.iter_mut().enumerate() {
                *s += (l[i + 1] as f64 - l[i] as f64) * 1e-6;
            }
        }
        if sums.iter().all(|&s| s == 0.0) {
            return Ok(vec![]);
        }
        Ok(NAMES.iter().zip(sums).map(|(n, s)| (format!("persist {n}"), s)).collect())
    }

    /// Buffers of the tensor-core prefill attention (None when the score buffers were too big).
    fn attn_tc_bufs(&self) -> Option<AttnTcBufs<'_>> {
        let (sb, pb) = self.s.scores.as_ref()?;
        Some(AttnTcBufs {
            qa: self.act(&self.s.qa),
            scores: sb.f32(),
            probs: self.act(pb),
            out: self.act(&self.s.xact),
        })
    }

    /// Pointer arrays of the tensor-core attention for every layer and sequence of the pass:
    /// per (layer, seq): [K, q, S, V, P, out] × heads.
    fn upload_attn_ptrs(&self) -> Result<AttnPtrs> {
        let bufs =
            self.attn_tc_bufs().ok_or_else(|| Error::Gpu("no score buffers for tensor-core attention".into()))?;
        let caches = (0..self.cfg.num_hidden_layers).map(|l| self.layer_cache(l)).collect::<Result<Vec<_>>>()?;
        AttnPtrs::upload(&self.kern(), &self.s.ptrs, &caches, &bufs, &self.pass_seqs)
    }

    /// Attention of layer `layer` for every sequence of a long prefill pass on tensor cores.
    fn tc_attention(&self, layer: usize, table: &AttnPtrs) -> Result<()> {
        let Some(bufs) = self.attn_tc_bufs() else { return Ok(()) };
        let k = self.kern();
        for si in 0..self.pass_seqs.len() {
            k.attn_tc(&self.s.ptrs, table, &bufs, layer, si)?;
        }
        Ok(())
    }

    /// Uploads pass metadata.
    fn put_meta(&self, m: &PassMeta) -> Result<()> {
        self.gpu.htod(&self.s.meta, 0, &m.image(&self.layout))
    }

    /// Runs the decode step of bucket `b`: replays its graph, or on first use runs the step
    /// eagerly (which computes this step's result) and then captures it for later replays.
    fn launch_decode_graph(&mut self, b: usize) -> Result<()> {
        if let Some(g) = self.graphs.get(&b) {
            return self.gpu.launch_graph(g);
        }
        self.queue_decode_step(b)?;
        self.gpu.sync()?;
        self.gpu.begin_capture()?;
        let r = self.queue_decode_step(b);
        let g = self.gpu.end_capture();
        r?;
        self.graphs.insert(b, g?);
        Ok(())
    }

    /// The megakernel's state when a decode step of `b` rows runs as `mk_step` + `mk_advance` (one row,
    /// an engine that got it): the one place that decides it, for the step and for the history write.
    fn mk_for(&self, b: usize) -> Option<&MkState> {
        self.mk.as_ref().filter(|_| b == 1)
    }

    fn queue_decode_step(&mut self, b: usize) -> Result<()> {
        if let Some(m) = self.mk_for(b) {
            // TRTFORGE_MK=1: the whole step as one persistent launch (it writes the logits row, the
            // K / V row at the sequence's position and its argmax key), then one thread does what
            // argmax + advance do below and bumps the megakernel's launch counter.
            let (k, l) = (self.kern(), self.layout);
            k.mk_step(&m.args, m.grid, m.smem)?;
            let (tokens, pos) = (self.meta_rows(l.tokens())?, self.meta_rows(l.row_pos())?);
            let (hist, ctr) = (self.s.hist.i32(), self.s.hist_ctr.i32());
            return k.mk_advance(m.best.view(DType::U64), m.epoch.i32(), self.s.next.i32(), tokens, pos, hist, ctr);
        }
        self.run_pass(b, b, 1, true, true, b)?;
        let (k, l) = (self.kern(), self.layout);
        self.argmax(b)?;
        k.advance(self.s.next.i32(), self.meta_rows(l.tokens())?, self.meta_rows(l.row_pos())?, b)
    }

    /// One decode step for `chunks` (one token each) through the graph of its bucket.
    fn decode_step(&mut self, chunks: &[SeqChunk]) -> Result<usize> {
        let b = sched::bucket_for(chunks.len(), self.opts.max_batch)
            .ok_or_else(|| Error::Invalid("more sequences than the engine holds".into()))?;
        let pieces: Vec<sched::Piece> = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| sched::Piece {
                chunk: i,
                slot: c.slot,
                start: self.lens[c.slot],
                from: 0,
                n: 1,
                out: vec![0],
            })
            .collect();
        let mut m = PassMeta::build(&pieces, |i| chunks[i].tokens);
        m.pad_decode(b, self.dummy_slot());
        self.put_meta(&m)?;
        self.launch_decode_graph(b)?;
        Ok(b)
    }

    /// Runs a forward pass; logits of the wanted rows stay on the device in `logits`
    /// (rows in chunk order). Returns the number of logit rows.
    fn forward_device(
        &mut self,
        chunks: &[SeqChunk],
        want: Logits,
        host_logits: Option<&mut Vec<f32>>,
    ) -> Result<usize> {
        check_chunks(self, chunks)?;
        self.gpu.bind()?;
        let decode = chunks.iter().all(|c| c.tokens.len() == 1);
        let v = self.cfg.vocab_size;
        if decode && self.opts.graphs && chunks.len() <= self.opts.max_batch {
            self.decode_step(chunks)?;
            for c in chunks {
                self.lens[c.slot] += 1;
            }
            if let Some(out) = host_logits {
                out.resize(chunks.len() * v, 0.0);
                self.gpu.dtoh(&self.s.logits, 0, out)?;
            }
            return Ok(chunks.len());
        }
        let spans: Vec<(usize, usize, usize)> =
            chunks.iter().map(|c| (c.slot, self.lens[c.slot], c.tokens.len())).collect();
        let passes = sched::split_passes(&spans, self.opts.max_tokens, want);
        let mut out = host_logits;
        if let Some(o) = out.as_deref_mut() {
            o.clear();
        }
        let mut total = 0;
        for pieces in &passes {
            let m = PassMeta::build(pieces, |i| chunks[i].tokens);
            let nsel = m.out_rows.len();
            self.put_meta(&m)?;
            self.set_pass_seqs(&m);
            let max_n = pieces.iter().map(|p| p.n).max().unwrap_or(1);
            self.run_pass_graphed(&m, pieces.len(), max_n, nsel)?;
            if let Some(o) = out.as_deref_mut() {
                if nsel > 0 {
                    let at = o.len();
                    o.resize(at + nsel * v, 0.0);
                    self.gpu.dtoh(&self.s.logits, 0, &mut o[at..])?;
                }
            }
            total += nsel;
        }
        for c in chunks {
            self.lens[c.slot] += c.tokens.len();
        }
        Ok(total)
    }

    /// A pass whose selected rows may be none (cache fill only): the head is skipped then.
    fn run_pass_partial(&mut self, m: &PassMeta, nseq: usize, max_n: usize, nsel: usize) -> Result<()> {
        if nsel == 0 {
            let head = self.steps.len() - 2; // Select, Head
            let saved: Vec<Step> = self.steps.drain(head..).collect();
            let r = self.run_pass(m.rows(), nseq, max_n, m.is_decode(), false, 0);
            self.steps.extend(saved);
            return r;
        }
        self.run_pass(m.rows(), nseq, max_n, m.is_decode(), m.selects_all(), nsel)
    }

    /// `run_pass_partial`, or (`TRTFORGE_PREFILL_GRAPH=1`, static engine, flash prefill attention)
    /// the replay of this pass shape's CUDA graph: a shape seen before is captured (host time once)
    /// and replayed from then on, at most `prefill::MAX_PASS_GRAPHS` shapes. The pass reads its
    /// varying inputs (tokens, positions, slots, pieces) from the metadata block uploaded before.
    fn run_pass_graphed(&mut self, m: &PassMeta, nseq: usize, max_n: usize, nsel: usize) -> Result<()> {
        let key = prefill::PassKey { rows: m.rows(), nseq, max_n, nsel, all: m.selects_all() };
        let ok = self.pf.graph
            && !m.is_decode()
            && nsel > 0
            && self.prefill_fa
            && self.opts.paged_blocks.is_none()
            && self.lead_decode == 0
            && !self.gpu.capturing();
        if !ok {
            return self.run_pass_partial(m, nseq, max_n, nsel);
        }
        if let Some((_, Some(g))) = self.pf_graphs.get(&key) {
            return self.gpu.launch_graph(g);
        }
        let seen = self.pf_graphs.get(&key).map_or(0, |e| e.0);
        if seen == 0 || self.pf_graphs.len() > prefill::MAX_PASS_GRAPHS {
            self.pf_graphs.entry(key).or_insert((0, None)).0 += 1;
            return self.run_pass_partial(m, nseq, max_n, nsel);
        }
        self.gpu.begin_capture()?;
        let r = self.run_pass_partial(m, nseq, max_n, nsel);
        let g = self.gpu.end_capture();
        r?;
        let g = g?;
        self.gpu.launch_graph(&g)?;
        self.pf_graphs.insert(key, (seen + 1, Some(g)));
        Ok(())
    }

    /// Whether the logits of a request all end up in the device buffer after one pass.
    fn fits_one_pass(&self, chunks: &[SeqChunk]) -> bool {
        chunks.iter().map(|c| c.tokens.len()).sum::<usize>() <= self.opts.max_tokens
    }

    /// Greedy next token of each chunk, chosen on the GPU (only token ids cross to the host).
    pub fn forward_argmax(&mut self, chunks: &[SeqChunk]) -> Result<Vec<u32>> {
        if !self.fits_one_pass(chunks) {
            let l = self.forward(chunks, Logits::Last)?;
            return Ok((0..l.rows()).map(|r| crate::backend::sampling::argmax(l.row(r))).collect());
        }
        let rows = self.forward_device(chunks, Logits::Last, None)?;
        let decode = chunks.iter().all(|c| c.tokens.len() == 1) && self.opts.graphs;
        if !decode {
            self.argmax(rows)?;
        }
        let mut ids = vec![0i32; rows];
        self.gpu.dtoh(&self.s.next, 0, &mut ids)?;
        Ok(ids.into_iter().map(|x| x as u32).collect())
    }

    /// Top-k / top-p sampling of each chunk's next token on the GPU.
    pub fn forward_sample(
        &mut self,
        chunks: &[SeqChunk],
        temperature: f32,
        top_k: usize,
        top_p: f32,
        seed: u64,
        step: u64,
    ) -> Result<Vec<u32>> {
        if !self.fits_one_pass(chunks) {
            return Err(Error::Invalid("GPU sampling needs a request of at most max_tokens tokens".into()));
        }
        let rows = self.forward_device(chunks, Logits::Last, None)?;
        let inv_t = 1.0f32 / temperature.max(1e-6);
        let (logits, next) = (self.s.logits.f32(), self.s.next.i32());
        self.kern().sample_topk_topp(logits, next, rows, inv_t, top_k, top_p, seed, step)?;
        let mut ids = vec![0i32; rows];
        self.gpu.dtoh(&self.s.next, 0, &mut ids)?;
        Ok(ids.into_iter().map(|x| x as u32).collect())
    }

    /// Drops the captured decode-step graphs (after a change they bake in).
    fn clear_decode_graphs(&mut self) {
        self.graphs.clear();
        self.loop_graph = None;
    }

    /// The `b` tokens of this step (`next`) into the greedy loop's history at its counter.
    /// (Not where the step writes them itself: the megakernel's `mk_advance`.)
    fn hist_put(&self, b: usize) -> Result<()> {
        if self.mk_for(b).is_some() {
            return Ok(());
        }
        self.kern().hist_put(self.s.next.i32().slice(0, b)?, self.s.hist.i32(), self.s.hist_ctr.i32(), b)
    }

    /// Greedy decoding entirely on the GPU: from each slot's last token, `steps` graph replays
    /// back to back (argmax and position advance inside the graph). Returns the tokens chosen per
    /// sequence. Sequences must not hit the cache end (`seq_len + steps <= max_seq`).
    pub fn greedy_decode(&mut self, last: &[(usize, u32)], steps: usize) -> Result<Vec<Vec<u32>>> {
        self.gpu.bind()?;
        if last.is_empty() || steps == 0 {
            return Ok(vec![vec![]; last.len()]);
        }
        for &(slot, _) in last {
            if slot >= self.opts.max_batch || self.lens[slot] + steps > self.opts.max_seq {
                return Err(Error::Invalid(format!("slot {slot}: {steps} steps do not fit the cache")));
            }
        }
        let toks: Vec<[u32; 1]> = last.iter().map(|&(_, t)| [t]).collect();
        let chunks: Vec<SeqChunk> =
            last.iter().zip(&toks).map(|(&(slot, _), t)| SeqChunk { slot, tokens: t }).collect();
        // hist (steps, b) i32: row i = the tokens chosen at step i, written by hist_put at its counter.
        self.gpu.htod(&self.s.hist_ctr, 0, &[0i32])?;
        let b = self.decode_step(&chunks)?; // also captures the one-step graph
        self.hist_put(b)?;
        // Session 33: one-row megakernel steps LOOP_STEPS to a graph launch (722.5 -> 720.5 µs; at bs8
        // the same lost 0.6 %). Session 35 (docs/benchmarks/2026-12-04-h200-session35, calls 5-6): on the
        // default path the loop graph is slower (TinyLlama fp16 bs1 1,349 / 1,350 against 1,369 / 1,368
        // with one graph a step, the SmolLM2 shape 2,252-2,269 against 2,362-2,370), with the megakernel
        // equal (1,398 / 1,398 against 1,395 / 1,397): so megakernel steps only. Captured at the first
        // loop of two or more steps (bench's warm-up), not run.
        let looped = self.mk_for(b).is_some() && steps > 1;
        if looped && self.loop_graph.is_none() {
            self.gpu.begin_capture()?;
            let mut r = Ok(());
            for _ in 0..LOOP_STEPS {
                r = self.queue_decode_step(b); // mk_advance writes the history (no hist_put)
                if r.is_err() {
                    break;
                }
            }
            let g = self.gpu.end_capture();
            r?;
            self.loop_graph = Some(g?);
        }
        let t0 = std::time::Instant::now();
        let mut left = steps - 1;
        if let (true, Some(g)) = (looped, &self.loop_graph) {
            while left >= LOOP_STEPS {
                self.gpu.launch_graph(g)?;
                left -= LOOP_STEPS;
            }
        }
        for _ in 0..left {
            self.gpu.launch_graph(&self.graphs[&b])?;
            self.hist_put(b)?;
        }
        let enq = t0.elapsed().as_secs_f64() * 1e3;
        let mut all = vec![0i32; steps * b];
        self.gpu.dtoh(&self.s.hist, 0, &mut all)?;
        // Session 8 (b64_8), opt-in: host enqueue time of the graph launches vs. the whole run (is
        // the bs64 decode host-bound?).
        if std::env::var("TRTFORGE_DECODE_LOG").as_deref() == Ok("1") {
            let tot = t0.elapsed().as_secs_f64() * 1e3;
            crate::util::errln!(
                "greedy_decode bs{b} {steps} steps: host enqueue {enq:.2} ms, until the tokens are back {tot:.2} ms"
            );
        }
        for &(slot, _) in last {
            self.lens[slot] += steps;
        }
        Ok((0..last.len()).map(|r| (0..steps).map(|i| all[i * b + r] as u32).collect()).collect())
    }

    /// Greedy next tokens of the first `rows` logit rows into `next`: `argmax_mb` (session 7), or
    /// the one-block `argmax_rows` with the `am1` switch.
    pub(crate) fn argmax(&self, rows: usize) -> Result<()> {
        let (k, logits, next) = (self.kern(), self.s.logits.f32(), self.s.next.i32());
        if self.bs1.am1 {
            k.argmax_rows(logits, next, rows)
        } else {
            k.argmax_mb(logits, next, self.s.am_keys.view(DType::U64), self.s.am_cnt.i32(), rows)
        }
    }

    /// `argmax` of host rows (each `vocab` long, at most `max_batch`) on the GPU: the kernel check
    /// of `TRTFORGE_CHECKS=bs1q` (ties, NaN, ±0, -inf).
    pub fn argmax_host_rows(&mut self, rows: &[Vec<f32>]) -> Result<Vec<u32>> {
        self.gpu.bind()?;
        let v = self.cfg.vocab_size;
        if rows.len() > self.opts.max_batch || rows.iter().any(|r| r.len() != v) {
            return Err(Error::Invalid(format!("argmax check: at most {} rows of {v}", self.opts.max_batch)));
        }
        let flat: Vec<f32> = rows.concat();
        self.gpu.htod(&self.s.logits, 0, &flat)?;
        self.argmax(rows.len())?;
        let mut ids = vec![0i32; rows.len()];
        self.gpu.dtoh(&self.s.next, 0, &mut ids)?;
        Ok(ids.into_iter().map(|x| x as u32).collect())
    }

    /// The engine's default bs1 switches (without TRTFORGE_BS1).
    pub fn bs1_default(&self) -> timeline::Bs1Knobs {
        self.bs1_default
    }

    /// Applies bs1 switches (`timeline::Bs1Knobs`): sets `c_trig`, drops the captured decode graphs
    /// (grids and splits are baked into them).
    pub fn set_bs1(&mut self, k: timeline::Bs1Knobs) -> Result<()> {
        self.gpu.bind()?;
        self.gpu.sync()?;
        self.gpu.set_const_i32s("c_trig", &k.trig_modes())?;
        self.gpu.set_const_i32("c_scpre", k.scpre_rows())?;
        if k.carveout != self.bs1.carveout {
            self.gpu.set_carveout_all(k.carveout.unwrap_or(-1))?;
        }
        self.bs1 = k;
        self.clear_decode_graphs();
        Ok(())
    }

    /// Replays the decode graph of `b` sequences (slots 0..b at their current lengths, which stay
    /// as they are) `reps` times with the timeline stamps on (`timeline.rs`); the launches of each
    /// replay.
    pub fn timeline_decode(&mut self, b: usize, reps: usize) -> Result<Vec<Vec<timeline::TlKernel>>> {
        self.replays_stamped(b, reps, "c_tl", timeline::buf_len())?.iter().map(|raw| timeline::parse(raw)).collect()
    }

    /// Replays the decode graph of `b` sequences (after one warm step) `reps` times with the device constant `name`
    /// pointing at a zeroed buffer of `len` u64 (the stamps' target; null again after each replay); each replay's buffer.
    fn replays_stamped(&mut self, b: usize, reps: usize, name: &str, len: usize) -> Result<Vec<Vec<u64>>> {
        self.gpu.bind()?;
        let toks: Vec<[u32; 1]> = (0..b).map(|i| [3 + i as u32]).collect();
        let chunks: Vec<SeqChunk> = toks.iter().enumerate().map(|(slot, t)| SeqChunk { slot, tokens: t }).collect();
        let buf = self.gpu.alloc(len * 8)?;
        let mut out = vec![];
        self.decode_step(&chunks)?; // warm (captures the bucket's graph if needed)
        for _ in 0..reps {
            self.gpu.sync()?;
            self.gpu.memset0(&buf)?;
            self.gpu.set_const_ptr(name, &buf)?;
            let r = self.decode_step(&chunks);
            self.gpu.sync()?;
            self.gpu.set_const_u64(name, 0)?;
            r?;
            let mut raw = vec![0u64; len];
            self.gpu.dtoh(&buf, 0, &mut raw)?;
            out.push(raw);
        }
        Ok(out)
    }

    /// Session 21: replays the decode graph of `b` sequences once with the per-tile trace of the tensor-core GEMVs on
    /// (`c_tt`, kernels.cu `tt_*`); its CSV (`timeline::tt_csv`). The stamps exist only in TL_ON builds
    /// (`TRTFORGE_TIMELINE=1`): without them this is an error, not an empty trace.
    pub fn tile_trace_decode(&mut self, b: usize) -> Result<String> {
        if std::env::var("TRTFORGE_TIMELINE").as_deref() != Ok("1") {
            return Err(Error::Invalid(
                "the per-tile trace needs TRTFORGE_TIMELINE=1 (its stamps are compiled only then)".into(),
            ));
        }
        let raw = self.replays_stamped(b, 1, "c_tt", timeline::tt_buf_len())?;
        timeline::tt_csv(&raw[0])
    }

    /// Sets a slot's cached length without running anything (benchmarks: decode timing at a
    /// given context after one real prefill).
    pub fn set_seq_len(&mut self, slot: usize, len: usize) -> Result<()> {
        if slot >= self.opts.max_batch || len > self.opts.max_seq {
            return Err(Error::Invalid(format!("slot {slot} / length {len} out of range")));
        }
        self.lens[slot] = len;
        Ok(())
    }
}

impl Backend for CudaBackend {
    fn name(&self) -> &'static str {
        "cuda"
    }
    fn config(&self) -> &LlamaConfig {
        &self.cfg
    }
    fn max_batch(&self) -> usize {
        self.opts.max_batch
    }
    fn max_seq(&self) -> usize {
        self.opts.max_seq
    }
    fn seq_len(&self, slot: usize) -> usize {
        self.lens.get(slot).copied().unwrap_or(0)
    }
    fn reset(&mut self, slot: usize) {
        if let Some(l) = self.lens.get_mut(slot) {
            *l = 0;
        }
    }
    fn forward(&mut self, chunks: &[SeqChunk], want: Logits) -> Result<LogitsOut> {
        let mut data = Vec::new();
        self.forward_device(chunks, want, Some(&mut data))?;
        Ok(LogitsOut { vocab: self.cfg.vocab_size, data })
    }
    fn forward_greedy(&mut self, chunks: &[SeqChunk]) -> Result<Vec<u32>> {
        self.forward_argmax(chunks)
    }
}

impl Drop for CudaBackend {
    fn drop(&mut self) {
        // Buffers are freed by their own Drop; make sure no kernel still uses them. (The serve
        // engine may drop the engine on another thread than the one that last bound it.)
        let _ = self.gpu.bind();
        let _ = self.gpu.sync();
        self.clear_decode_graphs();
    }
}

#[cfg(test)]
mod tests {
    use super::{attn_rope_switch, cg1_splits, cg_splits};

    #[test]
    fn attn_rope_switch_defaults_and_refusals() {
        // Unset: the fused RoPE where it can run; 0 off; 1 required.
        assert_eq!(attn_rope_switch(None).unwrap(), Some(false));
        assert_eq!(attn_rope_switch(Some("0")).unwrap(), None);
        assert_eq!(attn_rope_switch(Some("1")).unwrap(), Some(true));
        for bad in ["yes", "", "2", " 1"] {
            let e = attn_rope_switch(Some(bad)).unwrap_err().to_string();
            assert!(e.contains("TRTFORGE_ATTN_ROPE") && e.contains("0 or 1"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn cg_splits_cover_the_context_with_the_ring() {
        // bench's 512 + 128 context: nsplit 10 (64-position chunks), 4 splits as measured.
        assert_eq!(cg_splits(640, 10), 4);
        assert_eq!(cg1_splits(640, 12), 10);
        assert_eq!(cg1_splits(648, 12), 10);
        assert_eq!(cg1_splits(4096, 64), 10);
        assert_eq!(cg1_splits(320, 64), 5);
        assert_eq!(cg1_splits(16, 1), 1);
        // 4k context: 8 splits of 512 positions, each preloaded whole.
        assert_eq!(cg_splits(4096, 64), 8);
        // short caches: never more splits than chunks, never none.
        assert_eq!(cg_splits(128, 2), 2);
        assert_eq!(cg_splits(16, 1), 1);
        assert_eq!(cg_splits(1 << 20, 16384), 64);
    }

    #[test]
    fn rotated_kv_cache_table_and_its_limits() {
        use crate::backend::cpu::KvQuant;
        use crate::quant::kv::{KvCacheDtype, KvRotation, KvScaleMode};
        let c = crate::model::LlamaConfig::preset("tinyllama-1.1b").unwrap();
        let rot = |layers: usize, hd: usize| Some(KvRotation::new(3, layers, hd).unwrap());
        let kv = KvQuant {
            dtype: KvCacheDtype::Fp8,
            mode: KvScaleMode::Calibrated,
            scales: None,
            k_mean: None,
            rotate: rot(c.num_hidden_layers, c.head_dim),
        };
        // (layers, head_dim) signs of ±1, layer by layer as the rotation gives them.
        let t = super::kv_rot_table(&c, Some(&kv)).unwrap().unwrap();
        assert_eq!(t.len(), c.num_hidden_layers * c.head_dim);
        assert!(t.iter().all(|&x| x == 1.0 || x == -1.0));
        assert_eq!(&t[c.head_dim..2 * c.head_dim], kv.rotate.as_ref().unwrap().signs(1));
        // A rotation for another shape, or a head group too wide for one block: clear errors.
        let other = KvQuant { rotate: rot(3, c.head_dim), ..kv.clone() };
        assert!(super::kv_rot_table(&c, Some(&other)).is_err());
        let mut mqa = c.clone();
        (mqa.num_attention_heads, mqa.num_key_value_heads) = (64, 1);
        let e = super::kv_rot_table(&mqa, Some(&kv)).unwrap_err().to_string();
        assert!(e.contains("at most 31 q heads") && e.contains("not 64"), "{e}");
        // No rotation, or an f16 cache: no table.
        assert_eq!(super::kv_rot_table(&c, Some(&KvQuant { rotate: None, ..kv.clone() })).unwrap(), None);
        assert_eq!(super::kv_rot_table(&c, Some(&KvQuant { dtype: KvCacheDtype::Fp16, ..kv })).unwrap(), None);
    }
}
