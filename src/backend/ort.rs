//! ONNX Runtime backend: runs an engine directory's `model.onnx` (portable attention) on the CPU.
//!
//! ONNX Runtime is loaded at run time from `TRTFORGE_ORT_LIB`, `ORT_DYLIB_PATH`, or the `onnxruntime`
//! Python package (PyPI wheel); nothing is downloaded. The KV cache lives here as past/present tensors.
use super::{check_chunks, Backend, Logits, LogitsOut, SeqChunk};
use crate::engine_dir::config::AttentionForm;
use crate::engine_dir::Manifest;
use crate::error::{Error, Result};
use crate::model::LlamaConfig;
use half::f16;
use ort::session::{Session, SessionInputValue};
use ort::value::Tensor;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static ORT_ENV: OnceLock<std::result::Result<ort::environment::Environment, String>> = OnceLock::new();

fn empty_cache<T>(slots: usize, layers: usize) -> Vec<Vec<(Vec<T>, Vec<T>)>> {
    (0..slots).map(|_| (0..layers).map(|_| (Vec::new(), Vec::new())).collect()).collect()
}

/// Finds libonnxruntime: env vars first, then the `onnxruntime` Python package.
pub fn find_ort_library() -> Result<PathBuf> {
    for var in ["TRTFORGE_ORT_LIB", "ORT_DYLIB_PATH"] {
        if let Ok(p) = std::env::var(var) {
            let p = PathBuf::from(p);
            if p.is_file() {
                return Ok(p);
            }
            return Err(Error::Unsupported(format!("{var}={} does not name a file", p.display())));
        }
    }
    let probe = std::process::Command::new("python3")
        .args(["-c", "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))"])
        .output();
    if let Ok(out) = probe {
        if out.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("capi");
            if let Ok(rd) = std::fs::read_dir(&dir) {
                let mut libs: Vec<PathBuf> = rd
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libonnxruntime.so"))
                    })
                    .collect();
                libs.sort();
                if let Some(l) = libs.pop() {
                    return Ok(l);
                }
            }
        }
    }
    Err(Error::Unsupported(
        "ONNX Runtime not found: `pip install onnxruntime==1.31.1`, or set TRTFORGE_ORT_LIB to libonnxruntime.so"
            .into(),
    ))
}

fn ensure_ort() -> Result<&'static ort::environment::Environment> {
    let r = ORT_ENV.get_or_init(|| {
        // The message without its "unsupported:" prefix: it is added once, below.
        let lib = find_ort_library().map_err(|e| match e {
            Error::Unsupported(m) => m,
            other => other.to_string(),
        })?;
        let b = ort::init_from(&lib).map_err(|e| format!("loading {}: {e}", lib.display()))?;
        b.with_name("trtforge").build().map_err(|e| format!("initializing ONNX Runtime from {}: {e}", lib.display()))
    });
    r.as_ref().map_err(|e| Error::Unsupported(e.clone()))
}

fn ort_err(e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("ONNX Runtime: {e}"))
}

/// How ONNX Runtime runs a quantized engine's weights: `exact` (`DequantizeLinear → MatMul` as
/// exported, what the quality tables measure) or `matmulnbits[:LEVEL]` (ONNX Runtime fuses each
/// weight's DequantizeLinear → MatMul into its packed 4-/8-bit `MatMulNBits` kernel; LEVEL is its
/// `accuracy_level`: 1 fp32, 2 fp16, 3 bf16, 4 int8 compute; default 4).
///
/// Default ([`QuantKernels::for_engine`]): `matmulnbits:4` for int4 and int8 engines (faster than
/// fp16 on CPU, within +0.5 % perplexity of the exported model: docs/quantization.md) and, since
/// session 6, for fp8 engines: ONNX Runtime has no fused FP8 CPU kernel, so the ONNX is rewritten at
/// load (`crate::onnx::ort_cpu`: fp8 weights re-rounded to int8 blocks of 32, activation Q/DQ pairs
/// dropped; MatMulNBits then quantizes its inputs to int8 per block itself). `exact` for the rest.
/// `TRTFORGE_ORT_QUANT_KERNELS` overrides it (`exact` = the exported fp8 model as written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantKernels {
    Exact,
    MatMulNBits { accuracy_level: u8 },
}

pub const QUANT_KERNELS_ENV: &str = "TRTFORGE_ORT_QUANT_KERNELS";

impl QuantKernels {
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::Invalid(format!(
                "{QUANT_KERNELS_ENV}={s:?}: expected `exact`, `matmulnbits` or `matmulnbits:LEVEL` (LEVEL 0-4)"
            ))
        };
        match s.split_once(':') {
            None if s == "exact" || s.is_empty() => Ok(QuantKernels::Exact),
            None if s == "matmulnbits" => Ok(QuantKernels::MatMulNBits { accuracy_level: 4 }),
            Some(("matmulnbits", l)) => match l.parse::<u8>() {
                Ok(l) if l <= 4 => Ok(QuantKernels::MatMulNBits { accuracy_level: l }),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
    /// `TRTFORGE_ORT_QUANT_KERNELS`, if set.
    pub fn from_env() -> Result<Option<Self>> {
        std::env::var(QUANT_KERNELS_ENV).ok().map(|v| Self::parse(&v)).transpose()
    }
    /// The kernels an engine runs with: the environment's choice, else `matmulnbits:4` for int4, int8
    /// and fp8 weights (fp8 through the load-time rewrite of `crate::onnx::ort_cpu`) and `exact` otherwise.
    pub fn for_engine(m: &Manifest) -> Result<Self> {
        Ok(Self::from_env()?.unwrap_or(match m.precision {
            crate::quant::WeightFormat::I4 { .. } | crate::quant::WeightFormat::I8 | crate::quant::WeightFormat::F8 => {
                QuantKernels::MatMulNBits { accuracy_level: 4 }
            }
            _ => QuantKernels::Exact,
        }))
    }
    /// "exact", "matmulnbits:4".
    pub fn name(self) -> String {
        match self {
            QuantKernels::Exact => "exact".into(),
            QuantKernels::MatMulNBits { accuracy_level } => format!("matmulnbits:{accuracy_level}"),
        }
    }
}

/// Per-slot KV cache, one (key, value) pair per layer, each (kv_heads, len, head_dim).
enum KvStore {
    F32(Vec<Vec<(Vec<f32>, Vec<f32>)>>),
    F16(Vec<Vec<(Vec<f16>, Vec<f16>)>>),
}

pub struct OrtBackend {
    session: Session,
    weights_bytes: u64,
    kv_elem_bytes: u64,
    cfg: LlamaConfig,
    max_batch: usize,
    max_seq: usize,
    kv: KvStore,
    lens: Vec<usize>,
    /// [`Backend::notes`].
    notes: Vec<String>,
}

impl OrtBackend {
    /// Opens an engine dir with its default kernels ([`QuantKernels::for_engine`]).
    pub fn open(dir: &Path, max_batch: usize, max_seq: usize) -> Result<Self> {
        Self::open_with(dir, max_batch, max_seq, None)
    }

    /// Like [`open`](Self::open); `kernels` (when given) decides how quantized weights run.
    pub fn open_with(dir: &Path, max_batch: usize, max_seq: usize, kernels: Option<QuantKernels>) -> Result<Self> {
        let m = Manifest::load(dir)?;
        m.check_files(dir)?;
        if m.onnx.attention != AttentionForm::Portable {
            return Err(Error::Unsupported(format!(
                "{}: attention form {:?} is for TensorRT; ONNX Runtime runs `portable` engines",
                dir.display(),
                m.onnx.attention
            )));
        }
        let cfg = m.model_config.clone();
        if max_seq > m.build.max_seq_len {
            return Err(Error::Invalid(format!(
                "{max_seq} tokens requested, but {} was converted with max_seq_len {}",
                dir.display(),
                m.build.max_seq_len
            )));
        }
        let env = ensure_ort()?;
        let path = dir.join(&m.onnx.file);
        let threads = rayon::current_num_threads();
        let kernels = match kernels {
            Some(k) => k,
            None => QuantKernels::for_engine(&m)?,
        };
        let builder_for = |kernels: QuantKernels| -> Result<ort::session::builder::SessionBuilder> {
            let builder = Session::builder(env).map_err(ort_err)?.with_intra_threads(threads).map_err(ort_err)?;
            Ok(match kernels {
                // Run DequantizeLinear → MatMul as written (W8A16/W4A16). Otherwise ONNX Runtime fuses
                // them into MatMulNBits, whose CPU kernel changes the numerics (max |Δlogit| 0.7 on
                // SmolLM2 int8 vs 0.06), and quality would be measured on a different model than the
                // exported one.
                QuantKernels::Exact => builder.with_config_entry("session.disable_quant_qdq", "1").map_err(ort_err)?,
                // Speed: let ONNX Runtime fuse the weight DequantizeLinear → MatMul into MatMulNBits
                // (the weights stay packed; no per-step dequantization), computing at this accuracy
                // level.
                QuantKernels::MatMulNBits { accuracy_level } => builder
                    .with_config_entry("session.qdq_matmulnbits_accuracy_level", accuracy_level.to_string())
                    .map_err(ort_err)?,
            })
        };
        let mut builder = builder_for(kernels)?;
        let load_err = |e: ort::Error| Error::format(&path, format!("ONNX Runtime could not load the model: {e}"));
        let session = match load_time_rewrite(&m, kernels) {
            // The kernels need the graph in another form (crate::onnx::ort_cpu): decode, rewrite, hand
            // ONNX Runtime the bytes.
            Some((what, rewrite)) => {
                let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
                let mut model = <crate::proto::ModelProto as prost::Message>::decode(bytes.as_slice())
                    .map_err(|e| Error::format(&path, format!("not an ONNX model: {e}")))?;
                drop(bytes);
                crate::onnx::ort_cpu::inline_external_data(&mut model, dir)?;
                rewrite(&mut model)?;
                let bytes = prost::Message::encode_to_vec(&model);
                drop(model);
                if bytes.len() > i32::MAX as usize {
                    // protobuf's 2 GiB limit: run the exported model as written, with the kernels that
                    // suit it unrewritten (`exact`: without the rewrite, MatMulNBits would leave padded
                    // int4 weights unfused, and ONNX Runtime has no fused fp8 CPU kernel), rather than
                    // refuse an engine that works.
                    crate::util::errln!(
                        "warning: {}: the {what} rewrite would be {} bytes, over protobuf's 2 GiB; running the \
                         exported model as written with `exact` kernels",
                        path.display(),
                        bytes.len()
                    );
                    drop(bytes);
                    builder_for(QuantKernels::Exact)?.commit_from_file(&path).map_err(load_err)?
                } else {
                    builder.commit_from_memory(&bytes).map_err(load_err)?
                }
            }
            None => builder.commit_from_file(&path).map_err(load_err)?,
        };
        // The graph must take what the manifest says it takes (an edited manifest or a swapped model.onnx
        // otherwise fails later, on a missing input name).
        let got: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        let want: Vec<&str> = m.onnx.inputs.iter().map(|t| t.name.as_str()).collect();
        if got != want {
            return Err(Error::format(
                &path,
                format!(
                    "the ONNX model's inputs {got:?} differ from the manifest's {want:?}; the engine dir is inconsistent (re-run `trtforge convert --force`)"
                ),
            ));
        }
        let kv = match m.onnx.dtype.as_str() {
            "float32" => KvStore::F32(empty_cache(max_batch, cfg.num_hidden_layers)),
            "float16" => KvStore::F16(empty_cache(max_batch, cfg.num_hidden_layers)),
            d => return Err(Error::Unsupported(format!("KV cache dtype {d}"))),
        };
        let weights_bytes = m.files.iter().filter(|f| f.name.starts_with("model.onnx")).map(|f| f.bytes).sum();
        let kv_elem_bytes = if matches!(kv, KvStore::F16(_)) { 2 } else { 4 };
        let notes = ort_notes(&m, kernels);
        Ok(OrtBackend {
            session,
            weights_bytes,
            kv_elem_bytes,
            cfg,
            max_batch,
            max_seq,
            kv,
            lens: vec![0; max_batch],
            notes,
        })
    }
}

/// What ONNX Runtime runs differently from the engine dir's recipe ([`Backend::notes`]): the kernels of
/// quantized weights, and an 8-bit KV cache with dynamic scales, which the exported graph does not hold.
fn ort_notes(m: &Manifest, kernels: QuantKernels) -> Vec<String> {
    let mut notes = Vec::new();
    if m.precision.is_quantized() {
        notes.push(match kernels {
            QuantKernels::Exact => format!(
                "ort: quantized weights run as exported (`exact` kernels; {QUANT_KERNELS_ENV}=matmulnbits:4 is faster)"
            ),
            QuantKernels::MatMulNBits { .. } => format!(
                "ort: quantized weights run with ONNX Runtime's fused `{}` kernels, which round the activations to \
                 int8 blocks{}; {QUANT_KERNELS_ENV}=exact runs the graph as exported",
                kernels.name(),
                if m.precision == crate::quant::WeightFormat::F8 {
                    ", re-round the fp8 weights to int8 blocks and do not apply the static fp8 activation scales"
                } else {
                    ""
                }
            ),
        });
    }
    if let Some(kv) = m.extra.get("quantization").and_then(|q| q.get("kv_cache")) {
        if kv.get("scales").and_then(|s| s.as_str()) == Some("dynamic") {
            notes.push(format!(
                "ort: the engine's {} KV cache with dynamic scales is not in its ONNX graph, so ONNX Runtime keeps \
                 the cache in {}; --backend cpu (or cuda) runs it",
                kv.get("dtype").and_then(|d| d.as_str()).unwrap_or("8-bit"),
                m.onnx.dtype
            ));
        }
    }
    notes
}

/// A load-time rewrite of the exported graph, named for messages.
type Rewrite = (&'static str, fn(&mut crate::proto::ModelProto) -> Result<()>);

/// The rewrite an engine needs before ONNX Runtime runs it with `kernels`, if any
/// (crate::onnx::ort_cpu): under `MatMulNBits`, fp8 engines get their weights re-rounded to int8
/// blocks (no fused fp8 CPU kernel exists), and int4 engines with zero-padded groups lose the
/// padding and its `Slice`, which otherwise keeps ONNX Runtime from fusing them (it then dequantized
/// every weight on every step: SmolLM2 int4 at 2.1 tok/s).
fn load_time_rewrite(m: &Manifest, kernels: QuantKernels) -> Option<Rewrite> {
    use crate::onnx::ort_cpu;
    use crate::quant::WeightFormat;
    if !matches!(kernels, QuantKernels::MatMulNBits { .. }) {
        return None;
    }
    match m.precision {
        WeightFormat::F8 => {
            Some(("fp8 -> MatMulNBits", |g| ort_cpu::fp8_for_matmulnbits(g, ort_cpu::FP8_NBITS_BLOCK).map(drop)))
        }
        // Manifests record the padded inputs since the field exists; older ones are checked by decoding.
        WeightFormat::I4 { .. } if padded_inputs(m) != Some(0) => {
            Some(("int4 padding", |g| ort_cpu::int4_unpad(g).map(drop)))
        }
        // Per-channel int8 as blocks of 64: the same numbers, a faster MatMulNBits kernel.
        WeightFormat::I8 => Some(("int8 blocks", |g| ort_cpu::int8_blocked(g, ort_cpu::INT8_NBITS_BLOCK).map(drop))),
        _ => None,
    }
}

/// How many linear inputs the engine dir stores zero-padded to whole groups, when its manifest says.
fn padded_inputs(m: &Manifest) -> Option<usize> {
    m.extra.get("quantization")?.get("padded_inputs")?.as_array().map(|a| a.len())
}

impl Backend for OrtBackend {
    fn name(&self) -> &'static str {
        "ort"
    }
    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }
    fn config(&self) -> &LlamaConfig {
        &self.cfg
    }
    fn max_batch(&self) -> usize {
        self.max_batch
    }
    fn max_seq(&self) -> usize {
        self.max_seq
    }
    fn seq_len(&self, slot: usize) -> usize {
        self.lens.get(slot).copied().unwrap_or(0)
    }
    fn reset(&mut self, slot: usize) {
        if slot < self.max_batch {
            self.lens[slot] = 0;
            match &mut self.kv {
                KvStore::F32(s) => s[slot].iter_mut().for_each(|l| *l = Default::default()),
                KvStore::F16(s) => s[slot].iter_mut().for_each(|l| *l = Default::default()),
            }
        }
    }

    fn memory(&self) -> super::MemoryStats {
        let per_token = 2 * self.cfg.num_hidden_layers * self.cfg.kv_dim();
        super::MemoryStats {
            weights_bytes: self.weights_bytes,
            kv_cache_bytes: (per_token * self.max_batch * self.max_seq) as u64 * self.kv_elem_bytes,
            // What ONNX Runtime holds: the past/present tensors in the model's float type (a quantized
            // KV cache is Q/DQ inside the graph, so its values are on the 8-bit grid but stored 16-bit).
            kv_bytes_per_token: Some((per_token as u64 * self.kv_elem_bytes) as f64),
            ..Default::default()
        }
    }

    fn forward(&mut self, chunks: &[SeqChunk], want: Logits) -> Result<LogitsOut> {
        check_chunks(self, chunks)?;
        // Chunks with the same (cached, new) lengths run as one batch; others run one by one.
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            let key = (self.lens[c.slot], c.tokens.len());
            match groups.iter_mut().find(|g| {
                let f = &chunks[g[0]];
                (self.lens[f.slot], f.tokens.len()) == key
            }) {
                Some(g) => g.push(i),
                None => groups.push(vec![i]),
            }
        }
        let vocab = self.cfg.vocab_size;
        let mut rows: Vec<Vec<f32>> = vec![Vec::new(); chunks.len()];
        for g in groups {
            let sel: Vec<SeqChunk> = g.iter().map(|&i| chunks[i]).collect();
            let logits = match &mut self.kv {
                KvStore::F32(s) => run_group(&mut self.session, &self.cfg, s, &self.lens, &sel),
                KvStore::F16(s) => run_group(&mut self.session, &self.cfg, s, &self.lens, &sel),
            };
            let logits = match logits {
                Ok(l) => l,
                Err(e) => {
                    // A one-sequence group handed its cache to ONNX Runtime: start those slots over
                    // (empty) rather than leave a length without its cache.
                    for c in &sel {
                        self.reset(c.slot);
                    }
                    return Err(e);
                }
            };
            for (j, &i) in g.iter().enumerate() {
                let n = chunks[i].tokens.len();
                let per = &logits[j * n * vocab..(j + 1) * n * vocab];
                rows[i] = match want {
                    Logits::All => per.to_vec(),
                    Logits::Last => per[(n - 1) * vocab..].to_vec(),
                };
            }
        }
        for c in chunks {
            self.lens[c.slot] += c.tokens.len();
        }
        Ok(LogitsOut { vocab, data: rows.concat() })
    }
}

/// Runs chunks that share (cached length, new length) as one ONNX batch; updates their caches.
/// Returns logits (batch, n, vocab).
fn run_group<T>(
    session: &mut Session,
    cfg: &LlamaConfig,
    store: &mut [Vec<(Vec<T>, Vec<T>)>],
    lens: &[usize],
    chunks: &[SeqChunk],
) -> Result<Vec<f32>>
where
    T: ort::value::PrimitiveTensorElementType + Copy + std::fmt::Debug + 'static,
{
    let b = chunks.len();
    let n = chunks[0].tokens.len();
    let past = lens[chunks[0].slot];
    let (kvh, hd) = (cfg.num_key_value_heads, cfg.head_dim);
    let ids: Vec<i64> = chunks.iter().flat_map(|c| c.tokens.iter().map(|&t| t as i64)).collect();
    let pos: Vec<i64> = (0..b).flat_map(|_| (past..past + n).map(|p| p as i64)).collect();
    let mask = vec![1i64; b * (past + n)];
    let mut inputs: Vec<(Cow<'static, str>, SessionInputValue<'static>)> = Vec::new();
    let shape2 = |a: usize, c: usize| vec![a as i64, c as i64];
    inputs.push(("input_ids".into(), Tensor::from_array((shape2(b, n), ids)).map_err(ort_err)?.into()));
    inputs.push(("attention_mask".into(), Tensor::from_array((shape2(b, past + n), mask)).map_err(ort_err)?.into()));
    inputs.push(("position_ids".into(), Tensor::from_array((shape2(b, n), pos)).map_err(ort_err)?.into()));
    let kv_shape = vec![b as i64, kvh as i64, past as i64, hd as i64];
    #[allow(clippy::needless_range_loop)] // l indexes the inner level of store[slot][layer] and names the inputs
    for l in 0..cfg.num_hidden_layers {
        let (k, v) = if let [c] = chunks {
            // One sequence: hand its cache over (it is replaced by `present` below), no copy.
            let (k, v) = &mut store[c.slot][l];
            (std::mem::take(k), std::mem::take(v))
        } else {
            let mut k = Vec::with_capacity(b * kvh * past * hd);
            let mut v = Vec::with_capacity(b * kvh * past * hd);
            for c in chunks {
                k.extend_from_slice(&store[c.slot][l].0);
                v.extend_from_slice(&store[c.slot][l].1);
            }
            (k, v)
        };
        inputs.push((
            format!("past_key_values.{l}.key").into(),
            Tensor::from_array((kv_shape.clone(), k)).map_err(ort_err)?.into(),
        ));
        inputs.push((
            format!("past_key_values.{l}.value").into(),
            Tensor::from_array((kv_shape.clone(), v)).map_err(ort_err)?.into(),
        ));
    }
    let outputs = session.run(inputs).map_err(ort_err)?;
    let (_, logits) = outputs["logits"].try_extract_tensor::<f32>().map_err(ort_err)?;
    let logits = logits.to_vec();
    let per_seq = kvh * (past + n) * hd;
    for l in 0..cfg.num_hidden_layers {
        let (_, k) = outputs[format!("present.{l}.key").as_str()].try_extract_tensor::<T>().map_err(ort_err)?;
        let (_, v) = outputs[format!("present.{l}.value").as_str()].try_extract_tensor::<T>().map_err(ort_err)?;
        for (j, c) in chunks.iter().enumerate() {
            store[c.slot][l] = (k[j * per_seq..(j + 1) * per_seq].to_vec(), v[j * per_seq..(j + 1) * per_seq].to_vec());
        }
    }
    Ok(logits)
}
