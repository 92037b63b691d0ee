//! The CUDA engine over a paged KV cache (`trtforge serve --backend cuda`).
//!
//! Same weights, plan and kernels as the static engine, compiled with `PAGED_KV` (kernels.cu):
//! per layer a K and a V pool of `num_blocks + 1` blocks in the agreed NHD layout
//! `[block][16][n_kv_heads][head_dim]` (the extra block takes the writes of padded decode rows).
//! Every step uploads the step's block tables (one row per sequence, `i32`, in a fixed device buffer
//! whose address the kernels hold in `__constant__` memory) next to the usual per-row metadata
//! (token, position, table row). The QKV epilogue (GEMV or `rope_append`) writes position `p` to
//! block `table[p / 16]`, row `p % 16`; the decode attention looks each 16-key tile up in the table
//! (one tile = one block); the prefill attention (`attn_prefill`) reads every earlier position
//! through the table too, so chunked prefill, shared prefix blocks and recompute after preemption
//! attend over exactly the blocks the scheduler names.
//!
//! Decode-only steps replay the CUDA graph of their batch bucket, as the static engine does: only
//! the metadata and tables change between replays. The next token is chosen on the device: argmax
//! for greedy rows (inside the graph), `sample_rows` (top-k / top-p, per-row settings, the draw
//! seeded by the sequence's seed and the token's position) for the others; only token ids come back.
use super::{CudaBackend, CudaOptions};
use crate::backend::paged::{
    blocks_for_budget, check_step, sample_shaped, NextSeq, PagedBackend, PagedSeq, PromptScore, Shaping, TokenSampling,
    BLOCK_SIZE,
};
use crate::backend::sampling::{rows_logprobs, token_logprobs, TokenLogprobs};
use crate::backend::SeqChunk;
use crate::error::{Error, Result};
use crate::model::{LlamaConfig, ModelWeights};
use crate::quant::kv::KvCacheDtype;
use crate::quant::{QuantizedModel, WeightFormat};
use rayon::prelude::*;

/// Positions per KV block (the kernels' `KV_BLOCK`).
pub const BLOCK: usize = BLOCK_SIZE;

/// A sampled row of a step: its settings, the position of its new token and its logit changes.
type Want<'a> = (TokenSampling, usize, Option<Shaping<'a>>);

/// Whether a sampled row's token is chosen on the host: its logits are shaped (`logit_bias`,
/// penalties), or the device sampler does not cover its settings exactly.
fn on_host(w: &Want) -> bool {
    w.2.is_some() || (!w.0.is_greedy() && !device_sampler_exact(&w.0))
}

/// Sets `ids[r]` of each row chosen on the host (rows `0 .. ids.len()` of `logits`, `vocab` wide) to
/// the CPU reference's choice from its logits with its changes applied; other rows keep theirs.
fn choose_on_host(logits: &[f32], vocab: usize, ids: &mut [i32], want: &[Want]) {
    let (mut scratch, mut buf) = (Vec::new(), Vec::new());
    for (r, (s, pos, sh)) in want.iter().enumerate().take(ids.len()).filter(|(_, w)| on_host(w)) {
        let l = &logits[r * vocab..(r + 1) * vocab];
        ids[r] = sample_shaped(l, s, *pos, sh.as_ref(), &mut scratch, &mut buf) as i32;
    }
}

/// The scored rows of a piece: chunk rows `from .. from + take` of a sequence scored by `c` run as pass
/// rows `row0 ..`; gives (pass row, target token, alternatives) of each row `c` scores among them.
fn piece_scores<'a>(
    c: &'a PromptScore,
    from: usize,
    take: usize,
    row0: usize,
) -> impl Iterator<Item = (i32, u32, u8)> + 'a {
    let (lo, hi) = (c.from_row.max(from), (c.from_row + c.targets.len()).min(from + take));
    (lo..hi).map(move |r| ((row0 + r - from) as i32, c.targets[r - c.from_row], c.top))
}

/// Settings of a CUDA paged engine.
#[derive(Debug, Clone)]
pub struct CudaPagedOptions {
    pub precision: WeightFormat,
    /// Bytes of the K and V pools together (all layers).
    pub kv_cache_bytes: u64,
    /// Instead: the pool takes what `fraction` of the device's memory leaves after the weights
    /// and workspace ([`kv_bytes_for_fraction`](crate::backend::paged::kv_bytes_for_fraction));
    /// with `kv_cache_bytes` > 0 too, the smaller of the two.
    pub gpu_memory_utilization: Option<f64>,
    /// Most sequences in one step.
    pub max_num_seqs: usize,
    /// Most tokens in one step (sizes the scratch buffers; longer steps run in several passes).
    pub max_num_batched_tokens: usize,
    pub device: usize,
    /// An 8-bit KV cache (static per-head scales): blocks of half the bytes, so the same
    /// `kv_cache_bytes` holds twice the blocks.
    pub kv: Option<crate::backend::cpu::KvQuant>,
}

/// Whether the device sampler (`sample_rows`) draws exactly from these settings: it ranks at
/// most `SAMPLE_MAX_K` candidates, so top_k must be set and no larger (top_k 0 with or without
/// top_p goes to the host: `CudaPagedBackend::sample_on_host`).
pub fn device_sampler_exact(s: &TokenSampling) -> bool {
    (1..=super::kernels::SAMPLE_MAX_K).contains(&s.top_k)
}

/// Bytes of one KV-cache element at `precision` with an fp16 cache (f32 only for fp32 engines).
pub fn kv_elem_bytes(precision: WeightFormat) -> usize {
    if precision == WeightFormat::F32 {
        4
    } else {
        2
    }
}

/// Bytes of one KV-cache element of a paged engine: 1 for an 8-bit (int8 / fp8) cache.
pub fn kv_elem_bytes_of(precision: WeightFormat, kv: KvCacheDtype) -> usize {
    if kv.quantized() {
        kv.elem_bytes()
    } else {
        kv_elem_bytes(precision)
    }
}

pub struct CudaPagedBackend {
    eng: super::gpu::Owned<CudaBackend>,
    num_blocks: usize,
    max_len: usize,
    /// Host image of the block tables: (max_num_seqs, tbl_stride).
    tables: Vec<i32>,
    params: Vec<i32>,
    ids: Vec<i32>,
    /// When set, every step appends the logits of its sampled rows here (checks only).
    pub capture_logits: Option<Vec<f32>>,
    /// (steps, host seconds until the step is queued, seconds waiting for its tokens), for
    /// `take_profile`.
    prof: (u64, f64, f64),
    /// Overlap (the default; TRTFORGE_SERVE_OVERLAP=0 turns it off): decode steps are left in flight by `launch`.
    overlap: bool,
    /// Steps in flight, oldest first: rows, and the pinned stage their tokens are copied to
    /// (None: read `next` synchronously at `collect`, the one-step-in-flight loop), and for a
    /// mixed step the caller's order of its sampled rows.
    pending: std::collections::VecDeque<(usize, Option<usize>, Option<Vec<usize>>)>,
    /// Steps queued ahead (the default; TRTFORGE_SERVE_AHEAD=0 turns it off): tokens come back
    /// through pinned stages (no host wait at launch) and `launch_next` chains decode steps on the
    /// device.
    ahead: bool,
    /// Pinned downloads of sampled ids (two: the step being collected and the one queued behind).
    ids_stage: Vec<super::gpu::Pinned>,
    /// Pinned uploads of changed block-table rows (two, alternating).
    tbl_stage: Vec<super::gpu::Pinned>,
    /// Next stage of each ring.
    ring: (usize, usize),
    /// The newest step in flight is a graph decode step of (rows, bucket) whose metadata the graph
    /// advanced in place (tokens = its sampled ids, positions + 1): `launch_next` may follow it.
    chain: Option<(usize, usize)>,
    /// Steps queued by `launch_next` and their host time until queued (profile).
    prof_next: (u64, f64),
    /// TRTFORGE_SERVE_PROFILE: GPU time of each step and the GPU's idle time between steps
    /// (CUDA events on the stream).
    marks: Option<StepMarks>,
    /// The step being run has a sequence that asks for log-probabilities ([`TokenSampling::logprobs`]):
    /// such steps run synchronously (`step`), and each sampling point appends its rows to `logprobs`.
    lp_step: bool,
    /// Log-probabilities of the last `step`'s tokens (`PagedBackend::take_logprobs`).
    logprobs: Vec<Option<TokenLogprobs>>,
    /// Prompt log-probabilities of the last `step` (`PagedSeq::score`), a list a sequence of it.
    prompt_logprobs: Vec<Vec<TokenLogprobs>>,
}

/// Per-step CUDA events (TRTFORGE_SERVE_PROFILE): what a graph decode step and an eager
/// (prefill or mixed) step cost on the GPU, and how long the GPU waits for the host between steps.
#[derive(Default)]
struct StepMarks {
    /// Steps in flight, oldest first: start and end events, eager (not a graph replay), rows.
    open: std::collections::VecDeque<(CudaEvent, CudaEvent, bool, usize)>,
    /// End event of the last finished step.
    last_end: Option<CudaEvent>,
    /// [graph decode, eager]: (steps, GPU ms, rows).
    sum: [(u64, f64, u64); 2],
    /// Gaps shorter than `MARK_GAP_MS` between one step's end and the next one's start: (count,
    /// ms); longer ones (an idle server) are only counted.
    gap: (u64, f64, u64),
}

/// Gaps between steps at least this long are idle time, not step overhead.
const MARK_GAP_MS: f64 = 5.0;

use cudarc::driver::CudaEvent;

impl CudaPagedBackend {
    /// A step of `n` sequences fits the engine's batch (its buffers and decode graphs).
    fn check_batch(&self, n: usize) -> Result<()> {
        if n > self.eng.opts.max_batch {
            return Err(Error::Invalid(format!(
                "paged step of {n} sequences; this engine runs at most {} per step",
                self.eng.opts.max_batch
            )));
        }
        Ok(())
    }

    /// Uploads `w` (quantized roles from `q`'s stored codes, as [`CudaBackend::with_quantized`])
    /// and allocates a pool of as many blocks as fit in `o.kv_cache_bytes`.
    pub fn new(w: &ModelWeights, q: Option<&QuantizedModel>, o: &CudaPagedOptions) -> Result<Self> {
        let c = &w.config;
        let kv_dtype = o.kv.as_ref().map_or(KvCacheDtype::Fp16, |k| k.dtype);
        let kvb = kv_elem_bytes_of(o.precision, kv_dtype);
        if o.max_num_seqs == 0 || o.max_num_batched_tokens == 0 {
            return Err(Error::Invalid("max_num_seqs and max_num_batched_tokens must be at least 1".into()));
        }
        let block_bytes = crate::backend::paged::block_bytes(c, kvb) as u64;
        let kv_cache_bytes = match o.gpu_memory_utilization {
            None => o.kv_cache_bytes,
            Some(f) => {
                // What the weights and workspace take: the same engine with a one-block pool,
                // measured after loading, then freed.
                let mut probe = Self::engine_options(o, c.max_position_embeddings, 1);
                probe.graphs = false;
                let eng = CudaBackend::with_quantized(w, q, probe)?;
                eng.gpu.sync()?;
                let (free, total) = eng.gpu.mem_info();
                drop(eng);
                let b = crate::backend::paged::kv_bytes_for_fraction(
                    total as u64,
                    free as u64 + block_bytes,
                    f,
                    crate::backend::paged::GPU_HEADROOM_BYTES,
                    block_bytes,
                )?;
                // Both given (serve's default pool): what is asked for, within the fraction.
                if o.kv_cache_bytes > 0 {
                    b.min(o.kv_cache_bytes)
                } else {
                    b
                }
            }
        };
        let num_blocks = blocks_for_budget(c, kvb, kv_cache_bytes);
        if num_blocks == 0 {
            return Err(Error::Invalid(format!(
                "a KV cache of {kv_cache_bytes} bytes holds no block: one block of {BLOCK} tokens takes {block_bytes} bytes for this model",
            )));
        }
        if num_blocks >= i32::MAX as usize {
            return Err(Error::Invalid("KV cache too large for i32 block ids".into()));
        }
        let max_len = c.max_position_embeddings.min(num_blocks * BLOCK);
        let opts = Self::engine_options(o, max_len, num_blocks);
        let eng = CudaBackend::with_quantized(w, q, opts).map_err(|e| match e {
            Error::Gpu(m) if m.contains("allocating") => Error::Gpu(format!(
                "{m} (with a KV cache of {:.1} MiB: give a smaller --kv-cache-memory, or --gpu-memory-utilization to size it from the free memory)",
                kv_cache_bytes as f64 / (1u64 << 20) as f64
            )),
            e => e,
        })?;
        let eng = super::gpu::Owned(eng);
        let stride = eng.tbl_stride;
        let ahead = crate::backend::paged::ahead_requested();
        let (mut ids_stage, mut tbl_stage) = (Vec::new(), Vec::new());
        if ahead {
            for _ in 0..2 {
                ids_stage.push(eng.gpu.pinned(o.max_num_seqs)?);
                tbl_stage.push(eng.gpu.pinned(o.max_num_seqs * stride)?);
            }
        }
        Ok(CudaPagedBackend {
            tables: vec![num_blocks as i32; o.max_num_seqs * stride],
            params: Vec::new(),
            ids: Vec::new(),
            capture_logits: None,
            prof: (0, 0.0, 0.0),
            overlap: crate::backend::paged::overlap_requested(),
            pending: Default::default(),
            ahead,
            ids_stage,
            tbl_stage,
            ring: (0, 0),
            chain: None,
            prof_next: (0, 0.0),
            marks: std::env::var_os("TRTFORGE_SERVE_PROFILE").map(|_| StepMarks::default()),
            lp_step: false,
            logprobs: Vec::new(),
            prompt_logprobs: Vec::new(),
            eng,
            num_blocks,
            max_len,
        })
    }

    fn engine_options(o: &CudaPagedOptions, max_len: usize, num_blocks: usize) -> CudaOptions {
        let mut opts = CudaOptions::new(o.precision, o.max_num_seqs, max_len);
        opts.max_tokens = o.max_num_batched_tokens.clamp(o.max_num_seqs + 1, 8192);
        opts.paged_blocks = Some(num_blocks);
        opts.device = o.device;
        opts.kv = o.kv.clone();
        opts
    }

    /// The static engine underneath (device name, options).
    pub fn engine(&self) -> &CudaBackend {
        &self.eng
    }

    /// Bytes of one cached element (1 for an 8-bit cache).
    fn kv_elem(&self) -> usize {
        kv_elem_bytes_of(self.eng.opts.precision, self.eng.kv_dtype())
    }

    /// Blocks in the pool (the dummy block not counted).
    pub fn num_blocks(&self) -> usize {
        self.num_blocks
    }

    /// Uploads the tables of `seqs` (row i = sequence i; entries past a sequence's blocks point at
    /// the dummy block) and sets each row's cached length.
    fn put_tables(&mut self, seqs: &[PagedSeq]) -> Result<()> {
        let stride = self.eng.tbl_stride;
        for (i, s) in seqs.iter().enumerate() {
            let need = (s.start + s.tokens.len()).div_ceil(BLOCK);
            let row = &mut self.tables[i * stride..(i + 1) * stride];
            row[..need].copy_from_slice(&s.block_table[..need]);
            row[need..].fill(self.num_blocks as i32);
            self.eng.lens[i] = s.start;
        }
        let (t, _) = self.eng.tables.as_ref().ok_or_else(|| Error::Gpu("paged engine without tables".into()))?;
        self.eng.gpu.htod(t, 0, &self.tables[..seqs.len() * stride])
    }

    /// Samples the rows the graph's or the pass's argmax does not decide (`next` holds the argmax of
    /// every row): the device sampler takes those it covers, `host_rows` the rest; `want[r]` = logits
    /// row r's (settings, position of the new token, logit changes).
    fn sample_rest(&mut self, want: &[Want]) -> Result<()> {
        if want.iter().any(|w| !w.0.is_greedy() && !on_host(w)) {
            self.params.clear();
            for w @ (s, pos, _) in want {
                let inv_t = 1.0f32 / s.temperature.max(1e-6);
                let k = s.top_k.min(i32::MAX as usize) as i32;
                // The device sampler ranks at most SAMPLE_MAX_K candidates: exact for 1 <= top_k <=
                // SAMPLE_MAX_K; rows chosen on the host are flagged greedy here, so `sample_rows` skips them.
                self.params.extend_from_slice(&[
                    inv_t.to_bits() as i32,
                    k,
                    s.top_p.to_bits() as i32,
                    (s.is_greedy() || on_host(w)) as i32,
                    s.seed as u32 as i32,
                    (s.seed >> 32) as u32 as i32,
                    *pos as i32,
                    0,
                ]);
            }
            let (_, pbuf) = self.eng.tables.as_ref().ok_or_else(|| Error::Gpu("paged engine without tables".into()))?;
            self.eng.gpu.htod(pbuf, 0, &self.params)?;
            let (logits, next) = (self.eng.s.logits.f32(), self.eng.s.next.i32());
            self.eng.kern().sample_rows(logits, next, pbuf.i32(), want.len())?;
        }
        self.host_rows(want)
    }

    /// The rows whose logits the host needs, with one copy of them: rows chosen on the host
    /// ([`on_host`]: shaped logits, or top_k 0 / above SAMPLE_MAX_K) get the CPU reference's choice
    /// (`sample_token` on the shaped row: same draw from (seed, position)), written back into `next`;
    /// in a step with log-probabilities (`lp_step`) the rows that ask get theirs from the model's own
    /// logits at the chosen ids, the others None, so `logprobs` follows the step's ids. Synchronous.
    fn host_rows(&mut self, want: &[Want]) -> Result<()> {
        let last_host = want.iter().rposition(on_host);
        let last_lp = want.iter().rposition(|w| w.0.logprobs.is_some()).filter(|_| self.lp_step);
        let Some(last) = last_host.max(last_lp) else {
            if self.lp_step {
                self.logprobs.extend(std::iter::repeat_n(None, want.len()));
            }
            return Ok(());
        };
        let v = self.eng.cfg.vocab_size;
        let mut logits = vec![0f32; (last + 1) * v];
        self.eng.gpu.dtoh(&self.eng.s.logits, 0, &mut logits)?;
        let mut ids = vec![0i32; last + 1];
        self.eng.gpu.dtoh(&self.eng.s.next, 0, &mut ids)?;
        if last_host.is_some() {
            choose_on_host(&logits, v, &mut ids, want);
            self.eng.gpu.htod(&self.eng.s.next, 0, &ids)?;
        }
        if self.lp_step {
            let ids: Vec<u32> = ids.into_iter().map(|t| t as u32).collect();
            self.logprobs.extend(rows_logprobs(&logits, v, &ids, want.iter().map(|w| w.0.logprobs)));
        }
        Ok(())
    }

    fn argmax(&mut self, rows: usize) -> Result<()> {
        self.eng.argmax(rows)
    }

    /// Logits rows `from .. from + scored.len()` hold the scored prompt rows of the pass just run:
    /// each (sequence, target, top) gets its log-probabilities in `prompt_logprobs` (synchronous).
    fn score_rows(&mut self, from: usize, scored: &[(i32, usize, u32, u8)]) -> Result<()> {
        if scored.is_empty() {
            return Ok(());
        }
        let v = self.eng.cfg.vocab_size;
        let mut logits = vec![0f32; scored.len() * v];
        self.eng.gpu.dtoh(&self.eng.s.logits, from * v * 4, &mut logits)?;
        let got: Vec<TokenLogprobs> = scored
            .par_iter()
            .enumerate()
            .map(|(k, &(_, _, t, top))| token_logprobs(&logits[k * v..(k + 1) * v], t, top as usize))
            .collect();
        for (&(_, i, _, _), l) in scored.iter().zip(got) {
            self.prompt_logprobs[i].push(l);
        }
        Ok(())
    }

    fn capture(&mut self, rows: usize) -> Result<()> {
        if let Some(c) = self.capture_logits.as_mut() {
            let v = self.eng.cfg.vocab_size;
            let at = c.len();
            c.resize(at + rows * v, 0.0);
            self.eng.gpu.dtoh(&self.eng.s.logits, 0, &mut c[at..])?;
        }
        Ok(())
    }

    /// After a queued decode step's sampling (TRTFORGE_SERVE_AHEAD): sampled (non-greedy) ids
    /// replace the graph's argmax as the next step's input tokens, and the ids start their copy
    /// to a pinned stage, whose index is returned. None (no ahead): `collect` reads `next`.
    fn finish_queued(&mut self, want: &[Want]) -> Result<Option<usize>> {
        if !self.ahead {
            return Ok(None);
        }
        let n = want.len();
        if !want.iter().all(|(s, _, sh)| s.is_greedy() && sh.is_none()) {
            let l = self.eng.layout;
            let k = self.eng.kern();
            k.copy(self.eng.meta_rows(l.tokens())?.slice(0, n)?, self.eng.s.next.i32().slice(0, n)?)?;
        }
        let k = self.ring.0;
        self.ring.0 ^= 1;
        self.ids_stage[k].download(&self.eng.gpu, &self.eng.s.next, 0, n)?;
        Ok(Some(k))
    }

    /// An event recorded on the engine's stream now (profile only).
    fn mark(&self) -> Result<Option<CudaEvent>> {
        if self.marks.is_none() {
            return Ok(None);
        }
        let e = self
            .eng
            .gpu
            .ctx
            .new_event(Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(|e| Error::Gpu(format!("creating an event: {e:?}")))?;
        e.record(&self.eng.gpu.stream).map_err(|e| Error::Gpu(format!("event record: {e:?}")))?;
        Ok(Some(e))
    }

    /// Closes the step begun at `start` (profile only): its end is recorded now.
    fn mark_step(&mut self, start: Option<CudaEvent>, eager: bool, rows: usize) -> Result<()> {
        let Some(start) = start else { return Ok(()) };
        let Some(end) = self.mark()? else { return Ok(()) };
        if let Some(m) = self.marks.as_mut() {
            m.open.push_back((start, end, eager, rows));
        }
        Ok(())
    }

    /// Accounts the oldest step in flight, whose tokens have been read (its events are done).
    fn mark_done(&mut self) {
        let Some(m) = self.marks.as_mut() else { return };
        let Some((a, b, eager, rows)) = m.open.pop_front() else { return };
        if let (Ok(()), Ok(ms)) = (b.synchronize(), a.elapsed_ms(&b)) {
            let e = &mut m.sum[eager as usize];
            e.0 += 1;
            e.1 += ms as f64;
            e.2 += rows as u64;
        }
        if let Some(prev) = m.last_end.take() {
            if let Ok(g) = prev.elapsed_ms(&a) {
                let g = g as f64;
                if g < MARK_GAP_MS {
                    m.gap.0 += 1;
                    m.gap.1 += g.max(0.0);
                } else {
                    m.gap.2 += 1;
                }
            }
        }
        m.last_end = Some(b);
    }

    fn read_ids(&mut self, n: usize, out: &mut Vec<u32>) -> Result<()> {
        self.ids.resize(n, 0);
        self.eng.gpu.dtoh(&self.eng.s.next, 0, &mut self.ids[..n])?;
        out.extend(self.ids[..n].iter().map(|&x| x as u32));
        Ok(())
    }
}

impl PagedBackend for CudaPagedBackend {
    fn name(&self) -> &'static str {
        "cuda"
    }
    fn config(&self) -> &LlamaConfig {
        &self.eng.cfg
    }
    fn num_blocks(&self) -> usize {
        self.num_blocks
    }
    fn max_model_len(&self) -> usize {
        self.max_len
    }
    fn launch(&mut self, seqs: &[PagedSeq]) -> Result<Option<Vec<u32>>> {
        // Log-probabilities, prompt scores and shaped logits are computed on the host: such a step
        // runs synchronously.
        self.lp_step = false;
        if seqs
            .iter()
            .any(|s| s.sample.is_some_and(|p| p.logprobs.is_some()) || s.score.is_some() || s.shaping.is_some())
        {
            return self.step(seqs).map(Some);
        }
        let graph = self.eng.opts.graphs && seqs.iter().all(|s| s.tokens.len() == 1 && s.sample.is_some());
        let one_pass = seqs.iter().map(|s| s.tokens.len()).sum::<usize>() <= self.eng.opts.max_tokens;
        if self.ahead
            && !graph
            && one_pass
            && self.capture_logits.is_none()
            && !seqs.is_empty()
            && self.pending.is_empty()
        {
            return self.launch_mixed(seqs).map(|_| None);
        }
        if !self.overlap || !graph || self.capture_logits.is_some() || seqs.is_empty() {
            return self.step(seqs).map(Some);
        }
        check_step(&self.eng.cfg, self.num_blocks, self.max_len, seqs)?;
        self.check_batch(seqs.len())?;
        if !self.pending.is_empty() {
            return Err(Error::Invalid("paged backend: launch with a step in flight (collect first)".into()));
        }
        self.eng.gpu.bind()?;
        let t0 = std::time::Instant::now();
        self.chain = None;
        let m0 = self.mark()?;
        self.put_tables(seqs)?;
        let chunks: Vec<SeqChunk> =
            seqs.iter().enumerate().map(|(i, s)| SeqChunk { slot: i, tokens: s.tokens }).collect();
        let b = self.eng.decode_step(&chunks)?;
        let want: Vec<Want> = seqs.iter().filter_map(|s| s.sample.map(|p| (p, s.start + 1, s.shaping))).collect();
        self.sample_rest(&want)?;
        let stage = self.finish_queued(&want)?;
        self.mark_step(m0, false, seqs.len())?;
        self.prof.1 += t0.elapsed().as_secs_f64();
        self.pending.push_back((seqs.len(), stage, None));
        if self.ahead {
            self.chain = Some((seqs.len(), b));
        }
        Ok(None)
    }

    fn collect(&mut self) -> Result<Vec<u32>> {
        let (n, stage, rank) =
            self.pending.pop_front().ok_or_else(|| Error::Invalid("paged backend: no step in flight".into()))?;
        self.eng.gpu.bind()?;
        let t = std::time::Instant::now();
        let mut out = Vec::with_capacity(n);
        match stage {
            Some(k) => out.extend(self.ids_stage[k].host()?[..n].iter().map(|&x| x as u32)),
            None => self.read_ids(n, &mut out)?,
        }
        if let Some(rank) = rank {
            // A mixed step ran its one-token rows first: back to the caller's order.
            let ran = std::mem::take(&mut out);
            out = vec![0; ran.len()];
            for (j, &id) in ran.iter().enumerate() {
                out[rank[j]] = id;
            }
        }
        if self.pending.is_empty() && stage.is_none() {
            self.chain = None;
        }
        self.mark_done();
        self.prof.0 += 1;
        self.prof.2 += t.elapsed().as_secs_f64();
        Ok(out)
    }

    fn launch_next(&mut self, seqs: &[NextSeq]) -> Result<bool> {
        let Some((n, b)) = self.chain else { return Ok(false) };
        if !self.ahead
            || self.pending.len() != 1
            || seqs.len() != n
            || self.capture_logits.is_some()
            || seqs.iter().any(|s| s.sample.logprobs.is_some())
        {
            return Ok(false);
        }
        self.lp_step = false;
        let stride = self.eng.tbl_stride;
        for (i, s) in seqs.iter().enumerate() {
            let need = (s.start + 1).div_ceil(BLOCK);
            if s.start >= self.max_len || need > stride || s.block_table.len() < need {
                return Err(Error::Invalid(format!(
                    "paged next step: sequence {i} at position {} has {} blocks (this backend holds {} tokens)",
                    s.start,
                    s.block_table.len(),
                    self.max_len
                )));
            }
            if let Some(b) = s.block_table[..need].iter().find(|&&b| b < 0 || b as usize >= self.num_blocks) {
                return Err(Error::Invalid(format!("paged next step: block {b} of sequence {i} is outside the pool")));
            }
        }
        self.eng.gpu.bind()?;
        let t0 = std::time::Instant::now();
        let m0 = self.mark()?;
        // Only the table rows that changed (a sequence that entered a new block) go up; the
        // tokens and positions were advanced on the device by the step in flight.
        let (mut lo, mut hi) = (usize::MAX, 0);
        for (i, s) in seqs.iter().enumerate() {
            let need = (s.start + 1).div_ceil(BLOCK);
            let row = &mut self.tables[i * stride..i * stride + need];
            if row[..] != s.block_table[..need] {
                row.copy_from_slice(&s.block_table[..need]);
                lo = lo.min(i);
                hi = i;
            }
            self.eng.lens[i] = s.start;
        }
        if lo <= hi {
            let k = self.ring.1;
            self.ring.1 ^= 1;
            let len = (hi + 1 - lo) * stride;
            let st = &mut self.tbl_stage[k];
            st.host()?[..len].copy_from_slice(&self.tables[lo * stride..(hi + 1) * stride]);
            let (t, _) = self.eng.tables.as_ref().ok_or_else(|| Error::Gpu("paged engine without tables".into()))?;
            st.upload(&self.eng.gpu, 0, len, t, lo * stride * 4)?;
        }
        self.eng.launch_decode_graph(b)?;
        let want: Vec<Want> = seqs.iter().map(|s| (s.sample, s.start + 1, None)).collect();
        self.sample_rest(&want)?;
        let stage = self.finish_queued(&want)?;
        self.mark_step(m0, false, n)?;
        self.pending.push_back((n, stage, None));
        self.prof_next.0 += 1;
        self.prof_next.1 += t0.elapsed().as_secs_f64();
        Ok(true)
    }

    fn take_profile(&mut self) -> Option<String> {
        let (n, prep, wait) = std::mem::take(&mut self.prof);
        let (nn, nprep) = std::mem::take(&mut self.prof_next);
        let per = |s: f64| s * 1e6 / n.max(1) as f64;
        let gpu = match self.marks.as_mut() {
            Some(m) => {
                let (sum, gap) = (std::mem::take(&mut m.sum), std::mem::take(&mut m.gap));
                let kind = |(k, ms, rows): (u64, f64, u64)| {
                    format!(
                        "{k} steps {:.0} µs ({:.1} rows)",
                        ms * 1e3 / k.max(1) as f64,
                        rows as f64 / k.max(1) as f64
                    )
                };
                format!(
                    "; GPU per step: graph decode {}, eager (prefill / mixed) {}; GPU idle between steps {:.0} µs per step ({} gaps, {:.1} ms in all; {} gaps over {MARK_GAP_MS} ms not counted)",
                    kind(sum[0]),
                    kind(sum[1]),
                    gap.1 * 1e3 / gap.0.max(1) as f64,
                    gap.0,
                    gap.1,
                    gap.2
                )
            }
            None => String::new(),
        };
        Some(format!(
            "cuda: {n} steps, host until queued {:.0} µs/step, waiting for tokens {:.0} µs/step; {nn} queued behind the step in flight ({:.0} µs host each){gpu}",
            per(prep),
            per(wait),
            nprep * 1e6 / nn.max(1) as f64
        ))
    }
    fn kv_cache_bytes(&self) -> u64 {
        crate::backend::paged::block_bytes(&self.eng.cfg, self.kv_elem()) as u64 * self.num_blocks as u64
    }
    fn kv_format(&self) -> (String, f64) {
        let b = self.kv_elem();
        let c = &self.eng.cfg;
        let name = match self.eng.kv_dtype() {
            KvCacheDtype::Fp16 if b == 4 => "f32".to_string(),
            KvCacheDtype::Fp16 => "f16".to_string(),
            q => format!("{} (calibrated per-head scales)", q.as_str()),
        };
        (name, (2 * c.num_hidden_layers * c.kv_dim() * b) as f64)
    }

    fn step(&mut self, seqs: &[PagedSeq]) -> Result<Vec<u32>> {
        self.logprobs.clear();
        self.prompt_logprobs.clear();
        self.lp_step = seqs.iter().any(|s| s.sample.is_some_and(|p| p.logprobs.is_some()));
        check_step(&self.eng.cfg, self.num_blocks, self.max_len, seqs)?;
        if seqs.iter().any(|s| s.score.is_some()) {
            self.prompt_logprobs = vec![Vec::new(); seqs.len()];
        }
        if !self.pending.is_empty() {
            return Err(Error::Invalid("paged backend: step with a step in flight (collect first)".into()));
        }
        self.chain = None;
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        if self.marks.is_some() {
            self.eng.gpu.bind()?;
            let m0 = self.mark()?;
            let eager = !(self.eng.opts.graphs && seqs.iter().all(|s| s.tokens.len() == 1 && s.sample.is_some()));
            let r = self.step_synced(seqs);
            self.mark_step(m0, eager, seqs.iter().map(|s| s.tokens.len()).sum())?;
            self.mark_done();
            return r;
        }
        self.step_synced(seqs)
    }

    fn supports_logprobs(&self) -> bool {
        // `host_rows` / `score_rows`: `cuda-check --paged`'s "log-probabilities == the captured logits'" and
        // "prompt log-probabilities vs CPU" passed on an H100 (session 44, docs/benchmarks/2026-12-05-h200-session44).
        true
    }

    fn take_logprobs(&mut self) -> Vec<Option<TokenLogprobs>> {
        std::mem::take(&mut self.logprobs)
    }

    fn take_prompt_logprobs(&mut self) -> Vec<Vec<TokenLogprobs>> {
        std::mem::take(&mut self.prompt_logprobs)
    }

    fn supports_shaping(&self) -> bool {
        // `host_rows` + `choose_on_host`: `cuda-check --paged`'s "shaped tokens (logit_bias, penalties) == the
        // captured logits' choice" passed on an H100 (session 44).
        true
    }

    fn warm_up(&mut self) -> Result<Option<String>> {
        if std::env::var("TRTFORGE_SERVE_WARMUP").as_deref() == Ok("0") || !self.pending.is_empty() {
            return Ok(None);
        }
        self.eng.gpu.bind()?;
        let t0 = std::time::Instant::now();
        let mut graphs = Vec::new();
        if self.eng.opts.graphs {
            for b in super::sched::buckets(self.eng.opts.max_batch) {
                if self.eng.graphs.contains_key(&b) {
                    continue;
                }
                // Every row points at the dummy slot (its table row: the dummy block), position 0.
                let mut m = super::sched::PassMeta::build(&[], |_| -> &[u32] { &[] });
                m.pad_decode(b, self.eng.dummy_slot());
                self.eng.put_meta(&m)?;
                self.eng.launch_decode_graph(b)?;
                graphs.push(b);
            }
        }
        self.eng.gpu.sync()?;
        let t1 = std::time::Instant::now();
        let mut rows = Vec::new();
        if self.eng.gemm_pad {
            for r in super::sched::gemm_row_buckets(super::kernels::GEMV_MAX_T + 1, self.eng.opts.max_tokens) {
                self.eng.warm_gemms(r)?;
                rows.push(r);
            }
        }
        self.eng.gpu.sync()?;
        self.chain = None;
        let list = |v: &[usize]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",");
        Ok(Some(format!(
            "captured the decode graphs of batch {} in {:.2} s; ran the prefill GEMMs at {} rows in {:.2} s",
            if graphs.is_empty() { "-".to_string() } else { list(&graphs) },
            (t1 - t0).as_secs_f64(),
            if rows.is_empty() { "-".to_string() } else { list(&rows) },
            t1.elapsed().as_secs_f64()
        )))
    }
}

impl CudaPagedBackend {
    /// [`PagedBackend::step`] once checked: runs it and waits for its tokens.
    fn step_synced(&mut self, seqs: &[PagedSeq]) -> Result<Vec<u32>> {
        if seqs.iter().all(|s| s.tokens.len() == 1) || seqs.iter().all(|s| s.tokens.len() > 1) {
            return self.step_ordered(seqs);
        }
        // Mixed step: one-token pieces first, so that they run the decode attention (rows
        // 0..lead of the pass) and only the prefill chunks the tiled prefill kernel; the sampled
        // tokens go back in the caller's order.
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        order.sort_by_key(|&i| seqs[i].tokens.len() != 1);
        let sorted: Vec<PagedSeq> = order.iter().map(|&i| seqs[i]).collect();
        let captured = self.capture_logits.as_ref().map_or(0, |c| c.len());
        let ids = self.step_ordered(&sorted)?;
        // Sampled sequences in the order they ran -> their rank among the caller's sampled ones.
        let rank: Vec<usize> = {
            let mut r = vec![0; seqs.len()];
            let mut k = 0;
            for (i, s) in seqs.iter().enumerate() {
                if s.sample.is_some() {
                    r[i] = k;
                    k += 1;
                }
            }
            order.iter().filter(|&&i| seqs[i].sample.is_some()).map(|&i| r[i]).collect()
        };
        let mut out = vec![0u32; ids.len()];
        for (j, &id) in ids.iter().enumerate() {
            out[rank[j]] = id;
        }
        if !self.logprobs.is_empty() {
            let ran = std::mem::take(&mut self.logprobs);
            self.logprobs = vec![None; ran.len()];
            for (j, l) in ran.into_iter().enumerate() {
                self.logprobs[rank[j]] = l;
            }
        }
        if !self.prompt_logprobs.is_empty() {
            let ran = std::mem::take(&mut self.prompt_logprobs);
            self.prompt_logprobs = vec![Vec::new(); ran.len()];
            for (j, l) in ran.into_iter().enumerate() {
                self.prompt_logprobs[order[j]] = l;
            }
        }
        if let Some(c) = self.capture_logits.as_mut() {
            let v = self.eng.cfg.vocab_size;
            let ran = c[captured..].to_vec();
            for (j, &r) in rank.iter().enumerate() {
                c[captured + r * v..captured + (r + 1) * v].copy_from_slice(&ran[j * v..(j + 1) * v]);
            }
        }
        Ok(out)
    }
}

impl CudaPagedBackend {
    /// TRTFORGE_SERVE_AHEAD: a step with prefill chunks that fits one pass is left in flight too
    /// (its ids go to a pinned stage; `collect` puts them back in the caller's order), so the host
    /// work after it overlaps the GPU as it does for decode steps.
    fn launch_mixed(&mut self, seqs: &[PagedSeq]) -> Result<()> {
        check_step(&self.eng.cfg, self.num_blocks, self.max_len, seqs)?;
        self.check_batch(seqs.len())?;
        self.eng.gpu.bind()?;
        let t0 = std::time::Instant::now();
        self.chain = None;
        let m0 = self.mark()?;
        // One-token pieces first (rows 0..lead run the decode attention), as `step` orders them.
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        order.sort_by_key(|&i| seqs[i].tokens.len() != 1);
        let sorted: Vec<PagedSeq> = order.iter().map(|&i| seqs[i]).collect();
        self.put_tables(&sorted)?;
        let pieces: Vec<super::sched::Piece> = sorted
            .iter()
            .enumerate()
            .map(|(i, s)| super::sched::Piece {
                chunk: i,
                slot: i,
                start: s.start,
                from: 0,
                n: s.tokens.len(),
                out: if s.sample.is_some() { vec![s.tokens.len() - 1] } else { vec![] },
            })
            .collect();
        let want: Vec<Want> =
            sorted.iter().filter_map(|s| s.sample.map(|p| (p, s.start + s.tokens.len(), s.shaping))).collect();
        let nsel = self.run_pieces(&pieces, &[], |i| sorted[i].tokens)?;
        let mut stage = None;
        if nsel > 0 {
            self.argmax(nsel)?;
            self.sample_rest(&want)?;
            let k = self.ring.0;
            self.ring.0 ^= 1;
            self.ids_stage[k].download(&self.eng.gpu, &self.eng.s.next, 0, nsel)?;
            stage = Some(k);
        }
        // Sampled sequences in the order they ran -> their rank among the caller's sampled ones.
        let mut r = vec![0; seqs.len()];
        let mut k = 0;
        for (i, s) in seqs.iter().enumerate() {
            if s.sample.is_some() {
                r[i] = k;
                k += 1;
            }
        }
        let rank: Vec<usize> = order.iter().filter(|&&i| seqs[i].sample.is_some()).map(|&i| r[i]).collect();
        self.mark_step(m0, true, seqs.iter().map(|s| s.tokens.len()).sum())?;
        self.pending.push_back((nsel, stage, Some(rank)));
        self.prof.1 += t0.elapsed().as_secs_f64();
        Ok(())
    }

    /// One eager pass over `pieces` (the one-token pieces first: rows 0..lead run the decode
    /// attention), with the logits of the pieces' `out` rows and then of the pass rows `extra`;
    /// returns the number of rows whose logits were selected.
    fn run_pieces<'t>(
        &mut self,
        pieces: &[super::sched::Piece],
        extra: &[i32],
        tokens: impl Fn(usize) -> &'t [u32],
    ) -> Result<usize> {
        let mut m = super::sched::PassMeta::build(pieces, tokens);
        m.out_rows.extend_from_slice(extra);
        let nsel = m.out_rows.len();
        self.eng.put_meta(&m)?;
        self.eng.set_pass_seqs(&m);
        let max_n = pieces.iter().map(|p| p.n).max().unwrap_or(1);
        self.eng.lead_decode = pieces.iter().take_while(|p| p.n == 1).count();
        let r = self.eng.run_pass_partial(&m, pieces.len(), max_n, nsel);
        self.eng.lead_decode = 0;
        r.map(|_| nsel)
    }

    /// One step in the given order (table row i = sequence i).
    fn step_ordered(&mut self, seqs: &[PagedSeq]) -> Result<Vec<u32>> {
        self.check_batch(seqs.len())?;
        self.eng.gpu.bind()?;
        self.put_tables(seqs)?;
        let mut out = Vec::new();
        let scores = seqs.iter().any(|s| s.score.is_some_and(|c| !c.targets.is_empty()));
        let decode = self.eng.opts.graphs && !scores && seqs.iter().all(|s| s.tokens.len() == 1 && s.sample.is_some());
        if decode {
            let chunks: Vec<SeqChunk> =
                seqs.iter().enumerate().map(|(i, s)| SeqChunk { slot: i, tokens: s.tokens }).collect();
            // Replays the bucket's graph: the step, then argmax of every row into `next`.
            let t0 = std::time::Instant::now();
            self.eng.decode_step(&chunks)?;
            self.capture(seqs.len())?;
            let want: Vec<Want> = seqs.iter().filter_map(|s| s.sample.map(|p| (p, s.start + 1, s.shaping))).collect();
            self.sample_rest(&want)?;
            let t1 = std::time::Instant::now();
            self.read_ids(seqs.len(), &mut out)?;
            self.prof.0 += 1;
            self.prof.1 += (t1 - t0).as_secs_f64();
            self.prof.2 += t1.elapsed().as_secs_f64();
            return Ok(out);
        }
        // Prefill chunks (maybe with decodes): passes of at most max_tokens rows; logits for the
        // last row of each sequence that samples, then for the prompt rows that are scored.
        let max_rows = self.eng.opts.max_tokens;
        let mut pieces: Vec<super::sched::Piece> = Vec::new();
        let mut want: Vec<Want> = Vec::new();
        // Scored rows of the pass: (pass row, sequence, target token, alternatives).
        let mut scored: Vec<(i32, usize, u32, u8)> = Vec::new();
        let mut rows = 0;
        let flush = |me: &mut Self,
                     pieces: &mut Vec<super::sched::Piece>,
                     want: &mut Vec<Want>,
                     scored: &mut Vec<(i32, usize, u32, u8)>,
                     out: &mut Vec<u32>|
         -> Result<()> {
            if pieces.is_empty() {
                return Ok(());
            }
            let extra: Vec<i32> = scored.iter().map(|x| x.0).collect();
            let nsel = me.run_pieces(pieces, &extra, |i| seqs[i].tokens)? - extra.len();
            if nsel > 0 {
                me.capture(nsel)?;
                me.argmax(nsel)?;
                me.sample_rest(want)?;
                me.read_ids(nsel, out)?;
            }
            me.score_rows(nsel, scored)?;
            pieces.clear();
            want.clear();
            scored.clear();
            Ok(())
        };
        for (i, s) in seqs.iter().enumerate() {
            let mut from = 0;
            while from < s.tokens.len() {
                if rows == max_rows {
                    flush(self, &mut pieces, &mut want, &mut scored, &mut out)?;
                    rows = 0;
                }
                let take = (s.tokens.len() - from).min(max_rows - rows);
                let last = from + take == s.tokens.len();
                let sample = if last { s.sample } else { None };
                if let Some(c) = &s.score {
                    scored.extend(piece_scores(c, from, take, rows).map(|(row, t, top)| (row, i, t, top)));
                }
                pieces.push(super::sched::Piece {
                    chunk: i,
                    slot: i,
                    start: s.start + from,
                    from,
                    n: take,
                    out: if sample.is_some() { vec![take - 1] } else { vec![] },
                });
                if let Some(p) = sample {
                    want.push((p, s.start + s.tokens.len(), s.shaping));
                }
                from += take;
                rows += take;
            }
        }
        flush(self, &mut pieces, &mut want, &mut scored, &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::paged::LogitShaping;

    #[test]
    fn host_choices_apply_shaping_and_keep_device_rows() {
        let v = 6;
        // Row r's logits: token r is the largest.
        let logits: Vec<f32> =
            (0..4).flat_map(|r| (0..v).map(move |t| if t == r { 5.0 } else { t as f32 * 0.1 })).collect();
        let ban = LogitShaping { bias: vec![(1, -100.0), (4, 3.0)], ..Default::default() };
        let pen = LogitShaping { presence: 2.0, frequency: 3.0, ..Default::default() };
        let (g, gen) = (TokenSampling::GREEDY, [2u32, 2]);
        let sampled = TokenSampling { temperature: 1.0, top_k: 5, top_p: 1.0, seed: 1, logprobs: None };
        let want: Vec<Want> = vec![
            (g, 9, None),                      // device argmax: kept
            (g, 9, Some(ban.view(&[], &[]))),  // 1 banned: 4 (0.4 + 3) beats the rest
            (g, 9, Some(pen.view(&[], &gen))), // 2 seen twice: 5 - 2 - 6 < 0.5 -> 5
            (sampled, 9, None),                // device sampler (top_k 5): kept
        ];
        let mut ids = vec![-1, -1, -1, -1];
        choose_on_host(&logits, v, &mut ids, &want);
        assert_eq!(ids, vec![-1, 4, 5, -1]);
        // Rows past `ids` are not read.
        let mut short = vec![-1];
        choose_on_host(&logits, v, &mut short, &want);
        assert_eq!(short, vec![-1]);
        // top_k 0 goes to the host unshaped: the CPU sampler's draw.
        let all = TokenSampling { top_k: 0, ..sampled };
        let mut one = vec![-1];
        choose_on_host(&logits, v, &mut one, &[(all, 3, None)]);
        let mut scratch = Vec::new();
        assert_eq!(one[0] as u32, crate::backend::paged::sample_token(&logits[..v], &all, 3, &mut scratch));
    }

    #[test]
    fn scored_rows_of_pieces_cover_each_target_once() {
        // A 12-token chunk scoring rows 2..10 (targets 102..110), cut into pieces of 5 + 4 + 3 at pass rows
        // 7, 0 and 30.
        let targets: Vec<u32> = (102..110).collect();
        let c = PromptScore { from_row: 2, targets: &targets, top: 4 };
        let a: Vec<_> = piece_scores(&c, 0, 5, 7).collect();
        assert_eq!(a, vec![(9, 102, 4), (10, 103, 4), (11, 104, 4)]);
        let b: Vec<_> = piece_scores(&c, 5, 4, 0).collect();
        assert_eq!(b, vec![(0, 105, 4), (1, 106, 4), (2, 107, 4), (3, 108, 4)]);
        let d: Vec<_> = piece_scores(&c, 9, 3, 30).collect();
        assert_eq!(d, vec![(30, 109, 4)]);
        assert_eq!(piece_scores(&c, 10, 2, 0).count(), 0);
    }
}
