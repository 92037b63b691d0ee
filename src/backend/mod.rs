//! Execution backends behind one trait: [`cpu`] (f32 reference), [`ort`] (ONNX Runtime), [`cuda`]
//! (native engine), [`tensorrt`] (TensorRT engines), plus token choice ([`sampling`]). Generation,
//! evaluation and benchmarks only see [`Backend`].
pub mod cpu;
pub mod cuda;
pub mod grammar_mode;
pub mod json_mode;
pub mod ort;
pub mod paged;
pub mod regex_mode;
pub mod sampling;
pub mod tensorrt;
pub mod text_format;

use crate::error::Result;
use crate::model::LlamaConfig;

/// New tokens for one sequence slot; positions continue from what the slot's KV cache holds.
#[derive(Debug, Clone, Copy)]
pub struct SeqChunk<'a> {
    pub slot: usize,
    pub tokens: &'a [u32],
}

/// Which logits a forward pass returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Only each chunk's last position (generation).
    Last,
    /// Every new position (perplexity).
    All,
}

/// Logits of one forward pass: `rows × vocab`, rows in chunk order (one per chunk for
/// [`Logits::Last`], one per token for [`Logits::All`]).
#[derive(Debug, Clone)]
pub struct LogitsOut {
    pub vocab: usize,
    pub data: Vec<f32>, // (rows, vocab)
}

impl LogitsOut {
    pub fn rows(&self) -> usize {
        self.data.len() / self.vocab.max(1)
    }
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.vocab..(r + 1) * self.vocab]
    }
}

/// A Llama executor with a KV cache of `max_batch` slots × `max_seq` positions, allocated up front.
pub trait Backend {
    /// Short name for reports: "cpu", "ort", "cuda", "trt".
    fn name(&self) -> &'static str;
    fn config(&self) -> &LlamaConfig;
    fn max_batch(&self) -> usize;
    fn max_seq(&self) -> usize;
    /// Tokens already in a slot's cache.
    fn seq_len(&self, slot: usize) -> usize;
    /// Runs the chunks (at most one per slot), appends them to their caches and returns logits.
    fn forward(&mut self, chunks: &[SeqChunk], want: Logits) -> Result<LogitsOut>;
    /// Empties a slot's cache.
    fn reset(&mut self, slot: usize);
    /// Like `forward(chunks, Logits::Last)` followed by an argmax of each row (first index on
    /// ties). Backends that can choose on the device override it so logits stay there.
    fn forward_greedy(&mut self, chunks: &[SeqChunk]) -> Result<Vec<u32>> {
        let l = self.forward(chunks, Logits::Last)?;
        sampling::check_finite(self.name(), &l.data)?;
        Ok((0..l.rows()).map(|r| sampling::argmax(l.row(r))).collect())
    }

    /// What this backend runs differently from what the engine dir describes (an ONNX Runtime kernel
    /// that rounds otherwise, a quantized cache the graph does not hold), for the command to print.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// Memory held by the backend, for reports.
    fn memory(&self) -> MemoryStats {
        MemoryStats::default()
    }
}

/// Bytes a backend holds. Device fields are None on host-only backends.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct MemoryStats {
    pub weights_bytes: u64,
    /// The KV cache at its configured maximum (batch × max_seq).
    pub kv_cache_bytes: u64,
    /// Peak device memory allocated by this backend.
    pub device_peak_bytes: Option<u64>,
    /// Device used-memory increase seen by the driver since the backend was created.
    pub device_used_delta_bytes: Option<u64>,
    /// KV cache bytes per token (all layers, K and V, scales amortized) in the cache's dtype.
    #[serde(default)]
    pub kv_bytes_per_token: Option<f64>,
}

/// The execution backends trtforge knows, in the order `--backends auto` tries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// f32 reference on the CPU (runs the engine's source weights).
    Cpu,
    /// ONNX Runtime on the CPU (runs the engine's model.onnx).
    Ort,
    /// Native CUDA engine.
    Cuda,
    /// TensorRT engine (model.engine).
    Trt,
}

impl BackendKind {
    pub const ALL: [BackendKind; 4] = [BackendKind::Cpu, BackendKind::Ort, BackendKind::Cuda, BackendKind::Trt];
    /// Parses command-line backend names: `auto` (every kind) or cpu, ort, cuda, trt; each kind
    /// once, in the order first named.
    pub fn parse_list(names: &[String]) -> Result<Vec<BackendKind>> {
        let mut out: Vec<BackendKind> = Vec::new();
        for n in names {
            let kinds = match n.trim().to_ascii_lowercase().as_str() {
                "auto" => BackendKind::ALL.to_vec(),
                other => vec![BackendKind::ALL.into_iter().find(|k| k.name() == other).ok_or_else(|| {
                    crate::error::Error::Invalid(format!("unknown backend {other:?}; use auto, cpu, ort, cuda or trt"))
                })?],
            };
            for k in kinds {
                if !out.contains(&k) {
                    out.push(k);
                }
            }
        }
        Ok(out)
    }
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Ort => "ort",
            BackendKind::Cuda => "cuda",
            BackendKind::Trt => "trt",
        }
    }
}

/// Opens an engine directory (made by `trtforge convert`) on a backend with a KV cache of
/// `max_batch` × `max_seq`. An error says why that backend cannot run it here.
pub fn open_engine_dir(
    dir: &std::path::Path,
    kind: BackendKind,
    max_batch: usize,
    max_seq: usize,
) -> Result<Box<dyn Backend>> {
    let man = crate::engine_dir::Manifest::load(dir)?;
    // Sizes of every listed file, for every backend: a damaged dir is reported, not half-used.
    man.check_files(dir)?;
    match kind {
        BackendKind::Cpu => {
            // Float engines: the source weights in f32 (the reference). Quantized engines: their
            // stored weights dequantized exactly as DequantizeLinear does, computed in f32, with the
            // engine's fp8 activation scales and KV cache format applied where they round.
            let (weights, input_scales) = if !man.precision.is_quantized() {
                (crate::model::load::load(&man.source_model(dir)?)?.weights, Default::default())
            } else {
                let ew = crate::engine_dir::load_engine_weights(dir)?;
                (ew.weights, ew.quantized.input_scales)
            };
            let quant = cpu::CpuQuant { input_scales, kv: kv_quant_of(&man, dir)?, ..Default::default() };
            Ok(Box::new(cpu::CpuBackend::with_quant(std::sync::Arc::new(weights), max_batch, max_seq, quant)?))
        }
        BackendKind::Ort => Ok(Box::new(ort::OrtBackend::open(dir, max_batch, max_seq)?)),
        BackendKind::Cuda => {
            // What the CUDA engine cannot run is refused before anything else (a GPU or not).
            // An 8-bit KV cache with the engine's calibrated per-head scales; dynamic ones are
            // refused here (see cuda::kv_scale_table).
            let kv = kv_quant_of(&man, dir)?.filter(|k| k.dtype.quantized());
            if kv.as_ref().is_some_and(|k| k.k_mean.is_some() && k.rotate.is_none()) {
                return Err(crate::error::Error::Unsupported(format!(
                    "engine {}: its KV cache subtracts calibrated K means (kv_smooth_k) without rotating K, which the \
                     CUDA engine applies only with kv_rotate: true; run it with --backend cpu or ort",
                    man.name
                )));
            }
            if let Some(k) = &kv {
                cuda::kv_scale_table(&man.model_config, crate::quant::WeightFormat::F16, Some(k))
                    .and_then(|_| cuda::kv_rot_table(&man.model_config, Some(k)))
                    .map_err(|e| crate::error::Error::Unsupported(format!("engine {}: {e}", man.name)))?;
            }
            // The GPU first: on a machine without one, that is the error, before any weights load.
            cuda::gpu::probe()?;
            // The engine's own weights: float engines their source weights; quantized engines the
            // stored codes and scales of the engine dir, repacked into the kernels' layout as they are
            // (the same bytes ONNX Runtime and TensorRT read), with the dir's norms/embedding/head.
            let (weights, quantized) = if !man.precision.is_quantized() {
                (crate::model::load::load(&man.source_model(dir)?)?.weights, None)
            } else {
                let e = crate::engine_dir::load_engine_weights(dir)?;
                if !e.quantized.input_scales.is_empty() {
                    // fp8 W8A8 engine: the CUDA engine runs its stored fp8 weights with f16
                    // activations (weight-only); ORT / TensorRT / the CPU reference also round
                    // the linear inputs to fp8.
                    crate::util::errln!(
                        "note: engine {}: the CUDA engine runs the fp8 weights with f16 activations \
                         (the engine's {} static fp8 activation scales are not applied)",
                        man.name,
                        e.quantized.input_scales.len()
                    );
                }
                (e.weights, Some(e.quantized))
            };
            // The stored linears' own format (an int4 group size as stored).
            let p =
                quantized.as_ref().and_then(|q| q.linears.values().next().map(|l| l.format)).unwrap_or(man.precision);
            let mut opts = cuda::CudaOptions::new(p, max_batch, max_seq);
            opts.kv = kv;
            Ok(Box::new(cuda::CudaBackend::with_quantized(&weights, quantized.as_ref(), opts)?))
        }
        BackendKind::Trt => Ok(Box::new(tensorrt::TrtBackend::open(dir, max_batch, max_seq)?)),
    }
}

/// Opens a paged backend of `kind`. `quantized`: an engine dir's stored codes and scales, which
/// the CUDA engine runs as they are (the CPU reference runs `weights`, their dequantization);
/// `quant`: the engine's rounding beyond its weights (fp8 linear inputs, a quantized KV cache), CPU only.
pub fn open_paged(
    kind: BackendKind,
    weights: std::sync::Arc<crate::model::ModelWeights>,
    quantized: Option<&crate::quant::QuantizedModel>,
    quant: cpu::CpuQuant,
    o: &paged::PagedOptions,
) -> Result<Box<dyn paged::PagedBackend>> {
    paged::check_backend(kind)?;
    match kind {
        BackendKind::Cuda => {
            if !quant.input_scales.is_empty() {
                crate::util::errln!(
                    "note: the CUDA engine runs fp8 weights with f16 activations ({} static fp8 activation scales \
                     not applied)",
                    quant.input_scales.len()
                );
            }
            let kv = quant.kv.clone().filter(|k| k.dtype.quantized());
            if kv.as_ref().is_some_and(|k| k.k_mean.is_some() && k.rotate.is_none()) {
                return Err(crate::error::Error::Unsupported(
                    "this engine's KV cache subtracts calibrated K means (kv_smooth_k) without rotating K, which the \
                     CUDA engine applies only with kv_rotate: true; serve it with --backend cpu"
                        .into(),
                ));
            }
            if let Some(k) = &kv {
                cuda::kv_scale_table(&weights.config, crate::quant::WeightFormat::F16, Some(k))?;
                cuda::kv_rot_table(&weights.config, Some(k))?;
            }
            cuda::gpu::probe_unless_precompiling()?;
            let co = cuda::paged::CudaPagedOptions {
                precision: o.precision.unwrap_or(crate::quant::WeightFormat::F16),
                kv_cache_bytes: o.kv_cache_bytes,
                gpu_memory_utilization: o.gpu_memory_utilization,
                max_num_seqs: o.max_num_seqs,
                max_num_batched_tokens: o.max_num_batched_tokens,
                device: 0,
                kv,
            };
            Ok(Box::new(cuda::paged::CudaPagedBackend::new(&weights, quantized, &co)?))
        }
        _ => {
            if o.gpu_memory_utilization.is_some() {
                return Err(crate::error::Error::Invalid(
                    "--gpu-memory-utilization sizes a GPU's KV cache; the cpu backend takes --kv-cache-memory".into(),
                ));
            }
            Ok(Box::new(paged::CpuPagedBackend::with_quant(weights, o.kv_cache_bytes, quant)?))
        }
    }
}

/// The quantized KV cache an engine directory's manifest records (`extra.quantization.kv_cache`),
/// with its K means (`kv_cache.k_mean.file` in `dir`) when the cache is K-smoothed. Engine dirs
/// written before K smoothing have no `k_mean` and load as a plain cache.
pub fn kv_quant_of(man: &crate::engine_dir::Manifest, dir: &std::path::Path) -> Result<Option<cpu::KvQuant>> {
    use crate::error::Error;
    use crate::quant::kv::{KvCacheDtype, KvScaleMode, KvScales};
    let Some(kv) = man.extra.get("quantization").and_then(|q| q.get("kv_cache")) else { return Ok(None) };
    let bad = |m: &str| Error::Invalid(format!("engine {}: manifest quantization.kv_cache: {m}", man.name));
    let dtype: KvCacheDtype =
        serde_json::from_value(kv.get("dtype").cloned().unwrap_or_default()).map_err(|e| bad(&e.to_string()))?;
    let mode: KvScaleMode =
        serde_json::from_value(kv.get("scales").cloned().unwrap_or_default()).map_err(|e| bad(&e.to_string()))?;
    let scales = match mode {
        KvScaleMode::Dynamic => None,
        KvScaleMode::Calibrated => {
            let get = |k: &str| -> Result<Vec<Vec<f32>>> {
                serde_json::from_value(kv.get(k).cloned().unwrap_or_default()).map_err(|e| bad(&format!("{k}: {e}")))
            };
            Some(KvScales { k: get("scales_k")?, v: get("scales_v")? })
        }
    };
    let k_mean = match kv.get("k_mean").filter(|v| !v.is_null()) {
        None => None,
        Some(km) => {
            let file = km.get("file").and_then(|f| f.as_str()).ok_or_else(|| bad("k_mean has no file"))?;
            if file.contains('/') || file.contains('\\') || file.starts_with('.') {
                return Err(bad(&format!("k_mean.file {file:?} must be a plain file name")));
            }
            let c = &man.model_config;
            let p = dir.join(file);
            let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
            let m = crate::quant::kv::k_mean_from_bytes(&bytes, c.num_hidden_layers, c.kv_dim()).ok_or_else(|| {
                Error::format(
                    &p,
                    format!(
                        "{} bytes; K means are (layers {}, kv heads {}, head_dim {}) little-endian f32 = {} bytes",
                        bytes.len(),
                        c.num_hidden_layers,
                        c.num_key_value_heads,
                        c.head_dim,
                        c.num_hidden_layers * c.kv_dim() * 4
                    ),
                )
            })?;
            if m.iter().any(|v| !v.is_finite()) {
                return Err(Error::format(&p, "K means must be finite"));
            }
            Some(m)
        }
    };
    let rotate = match kv.get("rotate").filter(|v| !v.is_null()) {
        None => None,
        Some(r) => {
            let seed = r.get("seed").and_then(|s| s.as_u64()).ok_or_else(|| bad("rotate has no integer seed"))?;
            if mode != KvScaleMode::Calibrated {
                return Err(bad("rotate needs calibrated scales"));
            }
            let c = &man.model_config;
            Some(
                crate::quant::kv::KvRotation::new(seed, c.num_hidden_layers, c.head_dim)
                    .map_err(|e| bad(&format!("rotate: {e}")))?,
            )
        }
    };
    Ok(Some(cpu::KvQuant { dtype, mode, scales, k_mean, rotate }))
}

/// Checks a batch against the backend's limits before any work is done.
pub fn check_chunks(b: &dyn Backend, chunks: &[SeqChunk]) -> Result<()> {
    use crate::error::Error;
    let mut seen = vec![false; b.max_batch()];
    for c in chunks {
        if c.slot >= b.max_batch() {
            return Err(Error::Invalid(format!(
                "sequence slot {} is beyond the batch capacity {}",
                c.slot,
                b.max_batch()
            )));
        }
        if std::mem::replace(&mut seen[c.slot], true) {
            return Err(Error::Invalid(format!("slot {} appears twice in one batch", c.slot)));
        }
        if c.tokens.is_empty() {
            return Err(Error::Invalid("empty token chunk".into()));
        }
        let end = b.seq_len(c.slot) + c.tokens.len();
        if end > b.max_seq() {
            return Err(Error::Invalid(format!(
                "sequence of {end} tokens exceeds the KV cache capacity of {} (model context {})",
                b.max_seq(),
                b.config().max_position_embeddings
            )));
        }
        let vocab = b.config().vocab_size as u32;
        if let Some(t) = c.tokens.iter().find(|&&t| t >= vocab) {
            return Err(Error::Invalid(format!("token id {t} is outside the vocabulary (size {vocab})")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_lists_name_each_kind_once() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let all = BackendKind::ALL.to_vec();
        assert_eq!(BackendKind::parse_list(&names(&["auto", "cpu"])).unwrap(), all);
        assert_eq!(BackendKind::parse_list(&names(&["cpu", "auto"])).unwrap(), all);
        assert_eq!(
            BackendKind::parse_list(&names(&["ort", "cpu", "ort"])).unwrap(),
            vec![BackendKind::Ort, BackendKind::Cpu]
        );
        let e = BackendKind::parse_list(&names(&["gpu"])).unwrap_err().to_string();
        assert!(e.contains("\"gpu\"") && e.contains("auto, cpu, ort, cuda or trt"), "{e}");
    }
}
