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
pub mod gpu;
pub mod kernels;
pub mod pack;
pub mod plan;
pub mod sched;

use super::{check_chunks, Backend, Logits, LogitsOut, SeqChunk};
use crate::error::{Error, Result};
use crate::model::{LlamaConfig, ModelWeights, Param};
use crate::quant::QuantizedModel;
use cudarc::driver::CudaGraph;
use gpu::{DevBuf, GemmType, Gpu};
use half::f16;
use kernels::{
    gemv_mt, gemv_name, tc_name, KernelSpec, Role, WeightFormat, GEMV_MAX_T, GEMV_MTS, GEMV_THREADS, TC_THREADS,
};
use pack::HostLinear;
use plan::{LinearStep, Step};
use sched::{MetaLayout, PassMeta};
use std::collections::HashMap;
use std::ffi::c_void;

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
}

impl CudaOptions {
    pub fn new(precision: WeightFormat, max_batch: usize, max_seq: usize) -> Self {
        CudaOptions { precision, max_batch, max_seq, max_tokens: 2048, graphs: true, device: 0 }
    }
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
    part: DevBuf,         // (max_seqs, n_heads, nsplit, head_dim + 4) f32 attention partials
    counters: DevBuf,     // (max_seqs, n_kv) i32
    meta: DevBuf,         // MetaLayout i32
    next: DevBuf,         // (max_seqs) i32 sampled tokens
    hist: DevBuf,         // (max_seq, max_seqs) i32 tokens of on-GPU greedy loops
    qa: DevBuf,           // (max_tokens, q_dim) act: q for the tensor-core prefill attention
    /// Tensor-core prefill attention: scores (n_heads, n, total) f32 and probabilities (same) act,
    /// for n <= total <= cache length; None when that would exceed `MAX_SCORE_BYTES`.
    scores: Option<(DevBuf, DevBuf)>,
    ptrs: DevBuf, // (layers, slots, 6, n_heads) u64 pointer arrays of the batched GEMMs
}

/// Dynamic shared memory of a tensor-core GEMV: `rows` f16 input rows of `k` (+8 padding) elements.
fn tc_smem(rows: usize, k: usize) -> usize {
    rows * (k + 8) * 2
}

/// Largest score buffer the tensor-core prefill attention may allocate; beyond it the tiled
/// CUDA-core kernel runs instead.
const MAX_SCORE_BYTES: usize = 1 << 30;

pub struct CudaBackend {
    cfg: LlamaConfig,
    opts: CudaOptions,
    gpu: Gpu,
    spec: KernelSpec,
    steps: Vec<Step>,
    linears: Vec<Option<DevLinear>>, // per step
    norms: HashMap<Param, DevBuf>,   // (hidden) f32
    embed: DevBuf,                   // (vocab, hidden) f16 or f32
    kcache: DevBuf,                  // (layers, slots, n_kv, max_seq, head_dim)
    vcache: DevBuf,
    rope_cos: DevBuf, // (max_seq, head_dim/2) f32
    rope_sin: DevBuf,
    s: Scratch,
    layout: MetaLayout,
    lens: Vec<usize>,
    graphs: HashMap<usize, CudaGraph>,
    grid_cache: HashMap<(String, usize), u32>,
    /// Decode GEMVs on tensor cores (`tc_*` kernels: sm_80+, f16 activations; TRTFORGE_TC=0 turns
    /// them off).
    use_tc: bool,
    /// Decode attention kernel: `attn_decode_tc` (tensor cores, the default where it exists),
    /// `attn_decode` (CUDA cores, TRTFORGE_ATTN=v2) or `attn_decode_v1` (TRTFORGE_ATTN=v1, the
    /// previous one-chunk-per-block kernel), for comparison.
    attn_kernel: &'static str,
    /// Bytes of weights one decode step reads (all linears + LM head).
    pub weight_bytes: usize,
    /// When set, `run_pass` times every step (synchronizing) and adds ms per step kind here.
    profile: Option<Vec<(String, f64)>>,
    /// (slot, start, row0, n) of each sequence of the pass being run.
    pass_seqs: Vec<(usize, usize, usize, usize)>,
}

fn step_label(s: &Step) -> String {
    match s {
        Step::Embed => "embed".into(),
        Step::Select => "select".into(),
        Step::Attention { .. } => "attention".into(),
        Step::Linear(l) => l.role.tag().into(),
    }
}

fn ptr_of(b: &Option<DevBuf>) -> u64 {
    b.as_ref().map_or(0, |b| b.ptr())
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
            WeightFormat::I8 | WeightFormat::I4 { .. } => {
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
            WeightFormat::F8 => Err(fp8_unsupported()),
        })
        .collect::<Result<_>>()?;
    let cat = HostLinear::concat_rows(&parts);
    Ok(match st.role {
        Role::Qkv => cat.permute_rows(&pack::qkv_row_order(c.num_attention_heads, c.num_key_value_heads, c.head_dim)),
        Role::GateUp => cat.permute_rows(&pack::gateup_row_order(c.intermediate_size)),
        _ => cat,
    })
}

/// fp8 engines have no CUDA kernels here (ONNX Runtime and TensorRT run them).
fn fp8_unsupported() -> Error {
    Error::Unsupported(
        "the CUDA engine has no fp8 kernels; run fp8 engine dirs with --backend ort (CPU) or trt (TensorRT-RTX, sm89/sm120)"
            .into(),
    )
}

/// The quantized weights a preset (or any float model) runs with at `p`: the decoder linears through
/// `quant::rtn`, exactly as `trtforge convert` quantizes them without calibration (int4 groups padded
/// where the group does not divide an input dim). `None` for float precisions.
pub fn quantize_rtn(w: &ModelWeights, p: WeightFormat) -> Result<Option<QuantizedModel>> {
    let format = match p {
        WeightFormat::F32 | WeightFormat::F16 => return Ok(None),
        WeightFormat::F8 => return Err(fp8_unsupported()),
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
        if opts.precision == WeightFormat::F8 {
            return Err(fp8_unsupported());
        }
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
        let spec = KernelSpec {
            config: cfg.clone(),
            max_seq: seq_cap,
            act_f32: f32_acts(opts.precision),
            kv_f32: f32_acts(opts.precision),
            formats,
            gemv_mts: GEMV_MTS.to_vec(),
        };
        spec.validate().map_err(|m| Error::Unsupported(format!("CUDA engine, {}: {m}", opts.precision.label())))?;
        if let Some(arch) = std::env::var("TRTFORGE_CUDA_PRECOMPILE").ok().filter(|a| !a.is_empty()) {
            // Fill the kernel cache for `arch` without a GPU (the GPU machine then skips NVRTC).
            let c = gpu::compile_cached(&spec.source(), &arch, &gpu::cache_dir())?;
            return Err(Error::Gpu(format!("TRTFORGE_CUDA_PRECOMPILE: kernels for {arch} cached ({:.1} s)", c.secs)));
        }
        let gpu = Gpu::open(opts.device, &spec)?;
        gpu.bind()?;
        gpu.set_const_i32("c_max_seq", seq_cap as i32)?;
        gpu.set_const_i32("c_nsplit", spec.nsplit() as i32)?;
        let act = if spec.act_f32 { 4 } else { 2 };
        let kvb = if spec.kv_f32 { 4 } else { 2 };

        // Weights.
        let mut linears = Vec::with_capacity(steps.len());
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
                    linears.push(Some(DevLinear {
                        fmt: hl.fmt,
                        n: hl.n,
                        k: hl.k,
                        data: gpu.upload(&hl.data)?,
                        scales,
                        shadow: None,
                    }));
                    if let Some(p) = l.norm {
                        norms.insert(p, gpu.upload(&w.get(p).data)?);
                    }
                }
                _ => linears.push(None),
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

        // KV cache with one extra dummy slot for padded decode rows.
        let slots = opts.max_batch + 1;
        let kv_elems = cfg.num_hidden_layers * slots * cfg.kv_dim() * seq_cap;
        let kcache = gpu.alloc(kv_elems * kvb)?;
        let vcache = gpu.alloc(kv_elems * kvb)?;
        gpu.memset0(&kcache)?;
        gpu.memset0(&vcache)?;

        let mt = opts.max_tokens;
        let widest = cfg.hidden_size.max(cfg.q_dim()).max(cfg.intermediate_size);
        let ywide = (cfg.q_dim() + 2 * cfg.kv_dim()).max(2 * cfg.intermediate_size);
        let quantized = !matches!(fmt, WeightFormat::F16 | WeightFormat::F32);
        let layout = MetaLayout { max_tokens: mt, max_seqs: mt.max(slots) };
        let s = Scratch {
            h: gpu.alloc(mt * cfg.hidden_size * 4)?,
            hsel: gpu.alloc(mt * cfg.hidden_size * 4)?,
            xact: gpu.alloc(mt * widest * act)?,
            q: gpu.alloc(mt * cfg.q_dim() * 4)?,
            y: gpu.alloc(mt * ywide * 4)?,
            logits: gpu.alloc(mt * cfg.vocab_size * 4)?,
            wdeq: if quantized { Some(gpu.alloc(max_numel * 2)?) } else { None },
            part: gpu.alloc(layout.max_seqs * cfg.num_attention_heads * spec.nsplit() * (cfg.head_dim + 4) * 4)?,
            counters: gpu.alloc(layout.max_seqs * cfg.num_key_value_heads * 4)?,
            meta: gpu.alloc(layout.len() * 4)?,
            next: gpu.alloc(layout.max_seqs * 4)?,
            hist: gpu.alloc((opts.max_seq + 1) * slots * 4)?,
            qa: gpu.alloc(mt * cfg.q_dim() * act)?,
            scores: {
                let n = cfg.num_attention_heads * seq_cap * seq_cap;
                if n * 4 <= MAX_SCORE_BYTES {
                    Some((gpu.alloc(n * 4)?, gpu.alloc(n * act)?))
                } else {
                    None
                }
            },
            ptrs: gpu.alloc(cfg.num_hidden_layers * slots * 6 * cfg.num_attention_heads * 8)?,
        };
        gpu.memset0(&s.counters)?;
        gpu.memset0(&s.meta)?;
        // GEMV kernels with more than 48 KB of staged activations need the larger limit.
        for &(role, f) in &spec.formats {
            for &m in &GEMV_MTS {
                let bytes = m * role.k(&cfg) * act;
                if bytes > 48 * 1024 {
                    gpu.allow_smem(&gemv_name(role, f, m), bytes)?;
                }
            }
        }
        if quantized && std::env::var("TRTFORGE_DEQUANT_ONCE").as_deref() != Ok("0") {
            for lin in linears.iter_mut().flatten() {
                if matches!(lin.fmt, WeightFormat::F16 | WeightFormat::F32) {
                    continue;
                }
                let buf = gpu.alloc(lin.n * lin.k * 2)?;
                let (mut w_, mut s_, mut dq) = (lin.data.ptr(), ptr_of(&lin.scales), buf.ptr());
                let (mut n_, mut k_) = (lin.n as i32, lin.k as i32);
                let blocks = ((lin.n * lin.k / 8).div_ceil(256) as u32).min(gpu.sms * 16);
                let name = if lin.fmt == WeightFormat::I8 { "dequant_i8" } else { "dequant_i4" };
                let mut a = [
                    &mut w_ as *mut _ as *mut c_void,
                    &mut s_ as *mut _ as *mut c_void,
                    &mut dq as *mut _ as *mut c_void,
                    &mut n_ as *mut _ as *mut c_void,
                    &mut k_ as *mut _ as *mut c_void,
                ];
                // SAFETY: buf holds n × k f16; the weight buffers hold this linear's codes and scales.
                unsafe { gpu.launch(name, (blocks, 1, 1), 256, 0, &mut a)? };
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
            }
        }
        let attn_kernel = match std::env::var("TRTFORGE_ATTN").as_deref() {
            Ok("v1") => "attn_decode_v1",
            Ok("v2") => "attn_decode",
            _ if spec.attn_tc() && gpu.cc.0 >= 8 => "attn_decode_tc",
            _ => "attn_decode",
        };
        gpu.sync()?;
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
            rope_cos,
            rope_sin,
            s,
            layout,
            graphs: HashMap::new(),
            grid_cache: HashMap::new(),
            use_tc,
            attn_kernel,
            weight_bytes,
            profile: None,
            pass_seqs: vec![],
        })
    }

    pub fn options(&self) -> &CudaOptions {
        &self.opts
    }
    pub fn device_name(&self) -> &str {
        &self.gpu.name
    }
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }
    /// NVRTC compile time of this engine's kernels (0 when they came from the disk cache).
    pub fn compile_info(&self) -> (f64, bool) {
        (self.gpu.compile_secs, self.gpu.compile_cached)
    }
    /// KV-cache bytes per cached token (all layers, k and v).
    pub fn kv_bytes_per_token(&self) -> usize {
        2 * self.cfg.num_hidden_layers * self.cfg.kv_dim() * if self.spec.kv_f32 { 4 } else { 2 }
    }
    fn dummy_slot(&self) -> usize {
        self.opts.max_batch
    }
    fn meta_ptr(&self, off: usize) -> u64 {
        self.s.meta.ptr() + 4 * off as u64
    }
    fn layer_cache(&self, layer: usize) -> (u64, u64) {
        let per =
            (self.opts.max_batch + 1) * self.cfg.kv_dim() * self.spec.max_seq * if self.spec.kv_f32 { 4 } else { 2 };
        (self.kcache.ptr() + (layer * per) as u64, self.vcache.ptr() + (layer * per) as u64)
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

    fn tc_grid(&mut self, name: &str, smem: usize, tiles: usize) -> Result<u32> {
        let key = (name.to_string(), 0);
        let occ = match self.grid_cache.get(&key) {
            Some(&o) => o,
            None => {
                let o = self.gpu.occupancy(name, TC_THREADS, smem)?.max(1);
                self.grid_cache.insert(key, o);
                o
            }
        };
        // Whole tiles per block, balanced: ceil(tiles / resident blocks) tiles each.
        let resident = (self.gpu.sms * occ).max(1) as usize;
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
        let act_t = if self.spec.act_f32 { GemmType::F32 } else { GemmType::F16 };
        let act = if self.spec.act_f32 { 4 } else { 2 };
        let (mut tok, mut pos, mut slot) =
            (self.meta_ptr(l.tokens()), self.meta_ptr(l.row_pos()), self.meta_ptr(l.row_slot()));
        let (mut out_rows, mut s_slot, mut s_start, mut s_row0, mut s_n) = (
            self.meta_ptr(l.out_rows()),
            self.meta_ptr(l.seq_slot()),
            self.meta_ptr(l.seq_start()),
            self.meta_ptr(l.seq_row0()),
            self.meta_ptr(l.seq_n()),
        );
        let (mut cos, mut sin) = (self.rope_cos.ptr(), self.rope_sin.ptr());
        let (mut h, mut xact, mut q, mut y, logits) =
            (self.s.h.ptr(), self.s.xact.ptr(), self.s.q.ptr(), self.s.y.ptr(), self.s.logits.ptr());
        let (mut part, mut counters) = (self.s.part.ptr(), self.s.counters.ptr());
        let mut qa = self.s.qa.ptr();
        // Long prefills: attention as two batched tensor-core GEMMs around a causal softmax.
        let tc_attn = !decode && t > GEMV_MAX_T && self.s.scores.is_some() && !self.pass_seqs.is_empty();
        if tc_attn {
            self.upload_attn_ptrs()?;
        }
        let mut cur = h; // residual stream of the rows still in flight
        let mut rows = t;
        macro_rules! args {
            ($($a:expr),*) => { [$(&mut $a as *mut _ as *mut c_void),*] };
        }
        for si in 0..self.steps.len() {
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
                    let mut emb = self.embed.ptr();
                    let mut f32e: i32 = self.spec.act_f32 as i32;
                    // SAFETY: tokens (rows) index the (vocab, hidden) table (checked on the host); h has rows × hidden.
                    unsafe { self.gpu.launch("embed", (rows as u32, 1, 1), 256, 0, &mut args!(tok, emb, f32e, h))? };
                }
                Step::Select => {
                    if !select_all {
                        let mut hsel = self.s.hsel.ptr();
                        // SAFETY: out_rows holds nsel row indices < rows; hsel has max_tokens rows.
                        unsafe {
                            self.gpu.launch(
                                "gather_rows",
                                (nsel as u32, 1, 1),
                                256,
                                0,
                                &mut args!(cur, out_rows, hsel),
                            )?
                        };
                        cur = hsel;
                        rows = nsel;
                        // Selected rows of a prefill pass keep their positions only for the head,
                        // which does not read them.
                    }
                }
                Step::Attention { layer } => {
                    let (mut kc, mut vc) = self.layer_cache(layer);
                    if decode {
                        // Splits per (sequence, kv head): about two blocks per SM in all, at most
                        // one per cache chunk (and 64, the combine's bound); fixed per bucket, so a
                        // captured graph stays valid as the sequences grow.
                        let want = (2 * self.gpu.sms as usize).div_ceil(rows * c.num_key_value_heads);
                        let mut ns = want.clamp(1, self.spec.nsplit().min(64)) as i32;
                        let kname = self.attn_kernel;
                        let v1 = kname == "attn_decode_v1";
                        if v1 {
                            ns = self.spec.nsplit() as i32;
                        }
                        let grid = (ns as u32, c.num_key_value_heads as u32, rows as u32);
                        // SAFETY: q/xact have rows × q_dim; part/counters are sized for max_seqs rows;
                        // positions < max_seq index this layer's cache.
                        unsafe {
                            if v1 {
                                self.gpu.launch(
                                    "attn_decode_v1",
                                    grid,
                                    kernels::ATT_THREADS,
                                    0,
                                    &mut args!(q, kc, vc, xact, part, counters, pos, slot),
                                )?
                            } else {
                                self.gpu.launch(
                                    kname,
                                    grid,
                                    kernels::ATT_THREADS,
                                    0,
                                    &mut args!(q, kc, vc, xact, part, counters, pos, slot, ns),
                                )?
                            }
                        };
                    } else if tc_attn {
                        self.tc_attention(layer)?;
                    } else {
                        let grid = (max_n.div_ceil(kernels::PF_Q) as u32, c.num_attention_heads as u32, nseq as u32);
                        // SAFETY: the seq_* arrays describe nseq pieces whose rows lie in 0..rows.
                        unsafe {
                            self.gpu.launch(
                                "attn_prefill",
                                grid,
                                kernels::PF_Q as u32,
                                0,
                                &mut args!(q, kc, vc, xact, s_slot, s_start, s_row0, s_n),
                            )?
                        };
                    }
                }
                Step::Linear(ls) => {
                    let lin =
                        self.linears[si].as_ref().ok_or_else(|| Error::Gpu("linear step without weights".into()))?;
                    let (fmt, n, k) = (lin.fmt, lin.n, lin.k);
                    let (wptr, sptr, shadow) = (lin.data.ptr(), ptr_of(&lin.scales), ptr_of(&lin.shadow));
                    let norm_w = ls.norm.and_then(|p| self.norms.get(&p)).map_or(0, |b| b.ptr());
                    let (kc, vc) = ls.layer.map_or((0, 0), |l| self.layer_cache(l));
                    if rows <= GEMV_MAX_T {
                        let tc = self.use_tc && fmt.has_tc() && !self.spec.act_f32 && n % 16 == 0;
                        let (name, smem, grid, threads) = if tc {
                            let name = tc_name(ls.role, fmt);
                            let smem = tc_smem(rows, k);
                            let grid = self.tc_grid(&name, tc_smem(GEMV_MAX_T, k), n / 16)?;
                            (name, smem, grid, TC_THREADS)
                        } else {
                            let mt = gemv_mt(rows).unwrap_or(GEMV_MAX_T);
                            let name = gemv_name(ls.role, fmt, mt);
                            let grid = self.gemv_grid(&name, mt, mt * k * act, n / 2, fmt.pairs_per_warp())?;
                            (name, rows * k * act, grid, GEMV_THREADS)
                        };
                        let out = match ls.role {
                            Role::Qkv => q,
                            Role::O | Role::Down => cur,
                            Role::Head => logits,
                            Role::GateUp => 0,
                        };
                        let mut a = GemvArgs {
                            w: wptr,
                            scales: sptr,
                            h: cur,
                            norm_w,
                            x: xact,
                            out,
                            out_act: xact,
                            kc,
                            vc,
                            row_pos: pos,
                            row_slot: slot,
                            rcos: cos,
                            rsin: sin,
                            t: rows as i32,
                            n: n as i32,
                        };
                        // SAFETY: GemvArgs mirrors the CUDA struct; every buffer is sized for
                        // max_tokens >= rows rows of this role's dims.
                        unsafe { self.gpu.launch(&name, (grid, 1, 1), threads, smem as u32, &mut args!(a))? };
                    } else {
                        // GEMM path: normalized input, then cuBLAS, then the epilogue as a kernel.
                        if ls.norm.is_some() {
                            let mut nw = norm_w;
                            // SAFETY: cur and xact hold rows × hidden.
                            unsafe {
                                self.gpu.launch("rmsnorm", (rows as u32, 1, 1), 256, 0, &mut args!(cur, nw, xact))?
                            };
                        }
                        let (wg, wt) = match fmt {
                            WeightFormat::F32 => (wptr, GemmType::F32),
                            WeightFormat::F16 => (wptr, GemmType::F16),
                            WeightFormat::F8 => return Err(fp8_unsupported()),
                            WeightFormat::I8 | WeightFormat::I4 { .. } if shadow != 0 => (shadow, GemmType::F16),
                            WeightFormat::I8 | WeightFormat::I4 { .. } => {
                                let mut dq = ptr_of(&self.s.wdeq);
                                let (mut w_, mut s_) = (wptr, sptr);
                                let (mut n_, mut k_) = (n as i32, k as i32);
                                let blocks = ((n * k / 8).div_ceil(256) as u32).min(self.gpu.sms * 16);
                                // SAFETY: wdeq holds the largest linear; the weight buffers are n × k.
                                unsafe {
                                    if fmt == WeightFormat::I8 {
                                        self.gpu.launch(
                                            "dequant_i8",
                                            (blocks, 1, 1),
                                            256,
                                            0,
                                            &mut args!(w_, s_, dq, n_, k_),
                                        )?;
                                    } else {
                                        self.gpu.launch(
                                            "dequant_i4",
                                            (blocks, 1, 1),
                                            256,
                                            0,
                                            &mut args!(w_, s_, dq, n_, k_),
                                        )?;
                                    }
                                }
                                (dq, GemmType::F16)
                            }
                        };
                        let (dst, beta) = match ls.role {
                            Role::Qkv | Role::GateUp => (y, 0.0),
                            Role::O | Role::Down => (cur, 1.0),
                            Role::Head => (logits, 0.0),
                        };
                        // SAFETY: weights n × k, input rows × k, output rows × n, all on the device.
                        unsafe { self.gpu.gemm(rows, n, k, wg, wt, xact, act_t, dst, beta)? };
                        match ls.role {
                            Role::Qkv => {
                                let (mut kc, mut vc) = (kc, vc);
                                // SAFETY: y holds rows × (q+2kv) dims; positions index the cache.
                                unsafe {
                                    self.gpu.launch(
                                        "rope_append",
                                        (rows as u32, 1, 1),
                                        256,
                                        0,
                                        &mut args!(y, q, qa, kc, vc, pos, slot, cos, sin),
                                    )?
                                };
                            }
                            Role::GateUp => {
                                let blocks = ((rows * c.intermediate_size).div_ceil(256) as u32).min(self.gpu.sms * 16);
                                let mut ri = rows as i32;
                                // SAFETY: y holds rows × 2·inter; xact rows × inter.
                                unsafe { self.gpu.launch("swiglu", (blocks, 1, 1), 256, 0, &mut args!(y, xact, ri))? };
                            }
                            _ => {}
                        }
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

    /// Like `profile_decode` for a prefill of `prompt` into slot 0 (from an empty cache).
    pub fn profile_prefill(&mut self, prompt: &[u32], reps: usize) -> Result<Vec<(String, f64)>> {
        self.gpu.bind()?;
        if prompt.is_empty() || prompt.len() > self.opts.max_tokens.min(self.opts.max_seq) {
            return Err(Error::Invalid("prompt does not fit one pass".into()));
        }
        let pieces =
            [sched::Piece { chunk: 0, slot: 0, start: 0, from: 0, n: prompt.len(), out: vec![prompt.len() - 1] }];
        let m = PassMeta::build(&pieces, |_| prompt);
        self.profile_meta(&m, reps)
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
        Ok(p)
    }

    /// Pointer arrays of the tensor-core attention for every layer and sequence of the pass:
    /// per (layer, seq): [K, q, S, V, P, out] × heads.
    fn upload_attn_ptrs(&mut self) -> Result<()> {
        let c = &self.cfg;
        let (nh, hd, g) = (c.num_attention_heads, c.head_dim, c.num_attention_heads / c.num_key_value_heads);
        let act = if self.spec.act_f32 { 4u64 } else { 2 };
        let kvb = if self.spec.kv_f32 { 4u64 } else { 2 };
        let Some((sb, pb)) = &self.s.scores else { return Ok(()) };
        let nseq = self.pass_seqs.len();
        let mut v = vec![0u64; c.num_hidden_layers * nseq * 6 * nh];
        for l in 0..c.num_hidden_layers {
            let (kc, vc) = self.layer_cache(l);
            for (si, &(slot, start, row0, n)) in self.pass_seqs.iter().enumerate() {
                let total = (start + n) as u64;
                let base = (l * nseq + si) * 6 * nh;
                for h in 0..nh {
                    let kv_off = ((slot * c.num_key_value_heads + h / g) * self.spec.max_seq * hd) as u64 * kvb;
                    let q_off = ((row0 * c.q_dim() + h * hd) as u64) * act;
                    let s_off = h as u64 * n as u64 * total;
                    v[base + h] = kc + kv_off;
                    v[base + nh + h] = self.s.qa.ptr() + q_off;
                    v[base + 2 * nh + h] = sb.ptr() + 4 * s_off;
                    v[base + 3 * nh + h] = vc + kv_off;
                    v[base + 4 * nh + h] = pb.ptr() + act * s_off;
                    v[base + 5 * nh + h] = self.s.xact.ptr() + q_off;
                }
            }
        }
        self.gpu.htod(&self.s.ptrs, 0, &v)
    }

    /// Attention of layer `layer` for every sequence of a long prefill pass on tensor cores.
    fn tc_attention(&self, layer: usize) -> Result<()> {
        let c = &self.cfg;
        let (nh, hd) = (c.num_attention_heads, c.head_dim);
        let t = if self.spec.act_f32 { GemmType::F32 } else { GemmType::F16 };
        let Some((sb, pb)) = &self.s.scores else { return Ok(()) };
        let nseq = self.pass_seqs.len();
        for (si, &(_, start, _, n)) in self.pass_seqs.iter().enumerate() {
            let total = start + n;
            let arr = |which: usize| self.s.ptrs.ptr() + 8 * (((layer * nseq + si) * 6 + which) * nh) as u64;
            let scale = 1.0 / (hd as f32).sqrt();
            // SAFETY: the pointer arrays were uploaded for this pass; S/P hold n_heads × n × total
            // (n <= total <= cache length), q/out rows lie inside the pass, K/V inside the cache.
            unsafe {
                // Sᵀ (total × n) = K (total × hd) · qᵀ, scaled: the column-major view of S (n, total).
                self.gpu.gemm_batched(
                    true,
                    total,
                    n,
                    hd,
                    scale,
                    arr(0),
                    hd,
                    arr(1),
                    c.q_dim(),
                    t,
                    arr(2),
                    total,
                    GemmType::F32,
                    nh,
                )?;
                let (mut s, mut p) = (sb.ptr(), pb.ptr());
                let (mut ni, mut ti, mut st) = (n as i32, total as i32, start as i32);
                self.gpu.launch(
                    "softmax_causal",
                    (n as u32, nh as u32, 1),
                    256,
                    0,
                    &mut [
                        &mut s as *mut _ as *mut c_void,
                        &mut p as *mut _ as *mut c_void,
                        &mut ni as *mut _ as *mut c_void,
                        &mut ti as *mut _ as *mut c_void,
                        &mut st as *mut _ as *mut c_void,
                    ],
                )?;
                // outᵀ (hd × n) = Vᵀ (hd × total) · Pᵀ (total × n)
                self.gpu.gemm_batched(
                    false,
                    hd,
                    n,
                    total,
                    1.0,
                    arr(3),
                    hd,
                    arr(4),
                    total,
                    t,
                    arr(5),
                    c.q_dim(),
                    t,
                    nh,
                )?;
            }
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

    fn queue_decode_step(&mut self, b: usize) -> Result<()> {
        self.run_pass(b, b, 1, true, true, b)?;
        let (mut logits, mut next) = (self.s.logits.ptr(), self.s.next.ptr());
        let (mut tok, mut pos) = (self.meta_ptr(self.layout.tokens()), self.meta_ptr(self.layout.row_pos()));
        let mut bi = b as i32;
        // SAFETY: logits has b × vocab, next/tokens/pos have >= b entries.
        unsafe {
            self.gpu.launch(
                "argmax_rows",
                (b as u32, 1, 1),
                1024,
                0,
                &mut [&mut logits as *mut _ as *mut c_void, &mut next as *mut _ as *mut c_void],
            )?;
            self.gpu.launch(
                "advance",
                ((b as u32).div_ceil(128), 1, 1),
                128,
                0,
                &mut [
                    &mut next as *mut _ as *mut c_void,
                    &mut tok as *mut _ as *mut c_void,
                    &mut pos as *mut _ as *mut c_void,
                    &mut bi as *mut _ as *mut c_void,
                ],
            )?;
        }
        Ok(())
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
            self.run_pass_partial(&m, pieces.len(), max_n, nsel)?;
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
            let (mut logits, mut next) = (self.s.logits.ptr(), self.s.next.ptr());
            // SAFETY: logits holds rows × vocab, next >= rows entries.
            unsafe {
                self.gpu.launch(
                    "argmax_rows",
                    (rows as u32, 1, 1),
                    1024,
                    0,
                    &mut [&mut logits as *mut _ as *mut c_void, &mut next as *mut _ as *mut c_void],
                )?
            };
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
        let (mut logits, mut next) = (self.s.logits.ptr(), self.s.next.ptr());
        let mut inv_t = 1.0f32 / temperature.max(1e-6);
        let mut k = top_k as i32;
        let mut p = top_p;
        let (mut sd, mut st) = (seed, step);
        // SAFETY: logits holds rows × vocab, next >= rows entries; scalars by value.
        unsafe {
            self.gpu.launch(
                "sample_topk_topp",
                (rows as u32, 1, 1),
                kernels::SAMPLE_THREADS,
                0,
                &mut [
                    &mut logits as *mut _ as *mut c_void,
                    &mut next as *mut _ as *mut c_void,
                    &mut inv_t as *mut _ as *mut c_void,
                    &mut k as *mut _ as *mut c_void,
                    &mut p as *mut _ as *mut c_void,
                    &mut sd as *mut _ as *mut c_void,
                    &mut st as *mut _ as *mut c_void,
                ],
            )?
        };
        let mut ids = vec![0i32; rows];
        self.gpu.dtoh(&self.s.next, 0, &mut ids)?;
        Ok(ids.into_iter().map(|x| x as u32).collect())
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
        let b = self.decode_step(&chunks)?; // also captures the graph
        let hist = self.s.hist.ptr();
        let stride = (b * 4) as u64;
        let copy = |g: &Gpu, i: usize, next: u64| -> Result<()> {
            // SAFETY: hist has (max_seq + 1) × slots entries; i < steps <= max_seq, b <= slots.
            unsafe {
                cudarc::driver::result::memcpy_dtod_async(hist + i as u64 * stride, next, b * 4, g.stream.cu_stream())
                    .map_err(|e| Error::Gpu(format!("copy: {e:?}")))
            }
        };
        copy(&self.gpu, 0, self.s.next.ptr())?;
        for i in 1..steps {
            let g = &self.graphs[&b];
            self.gpu.launch_graph(g)?;
            copy(&self.gpu, i, self.s.next.ptr())?;
        }
        let mut all = vec![0i32; steps * b];
        self.gpu.dtoh(&self.s.hist, 0, &mut all)?;
        for &(slot, _) in last {
            self.lens[slot] += steps;
        }
        Ok((0..last.len()).map(|r| (0..steps).map(|i| all[i * b + r] as u32).collect()).collect())
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
        // Buffers are freed by their own Drop; make sure no kernel still uses them.
        let _ = self.gpu.sync();
        self.graphs.clear();
    }
}
