//! `trtforge.json`: what an engine directory holds and how it was made. Never infer from file names.
use super::config::{parse_precision, precision_name, AttentionForm, BuildSection, QuantMethod};
use crate::error::{Error, Result};
use crate::model::LlamaConfig;
use crate::quant::WeightFormat;
use crate::util::sha256_files;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const MANIFEST_FILE: &str = crate::model::load::ENGINE_MANIFEST_FILE;
/// Bumped on any incompatible change to the manifest or the files it describes.
pub const SCHEMA_VERSION: u32 = 1;
/// Files a later stage makes and can make again (`trtforge build`'s engine).
pub const REBUILDABLE: &[&str] = &["model.engine"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(try_from = "ManifestJson", into = "ManifestJson")]
pub struct Manifest {
    pub schema_version: u32,
    pub trtforge_version: String,
    pub name: String,
    /// Seconds since the Unix epoch.
    pub created_unix: u64,
    pub source: SourceInfo,
    pub model_config: LlamaConfig,
    /// The weights' format (`"precision"` in the JSON, with the config's names: "int4_awq", ...).
    pub precision: WeightFormat,
    /// How the quantized codes were chosen (`"method"`; older manifests: from the precision name or
    /// `extra.quantization.method`).
    pub method: QuantMethod,
    pub build: BuildSection,
    pub onnx: OnnxInfo,
    /// `tokenizer.json` beside the model, if the source had a tokenizer.
    pub tokenizer: Option<String>,
    /// Every file of the directory with its size and SHA-256.
    pub files: Vec<FileInfo>,
    /// Stage-specific sections (quantization, tensorrt) added by later stages.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The manifest as stored: `precision` is the config's string.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct ManifestJson {
    schema_version: u32,
    trtforge_version: String,
    name: String,
    /// Seconds since the Unix epoch.
    created_unix: u64,
    source: SourceInfo,
    model_config: LlamaConfig,
    precision: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<QuantMethod>,
    build: BuildSection,
    onnx: OnnxInfo,
    /// `tokenizer.json` beside the model, if the source had a tokenizer.
    tokenizer: Option<String>,
    /// Every file of the directory with its size and SHA-256.
    files: Vec<FileInfo>,
    /// Stage-specific sections (quantization, tensorrt) added by later stages.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    extra: serde_json::Map<String, serde_json::Value>,
}

impl TryFrom<ManifestJson> for Manifest {
    type Error = String;
    fn try_from(j: ManifestJson) -> std::result::Result<Self, String> {
        let q = j.extra.get("quantization");
        let group = q.and_then(|q| q.get("group_size")).and_then(|g| g.as_u64()).unwrap_or(128) as usize;
        let (precision, named) = parse_precision(&j.precision, group).map_err(|e| e.to_string())?;
        let recorded = q.and_then(|q| q.get("method")).and_then(|m| serde_json::from_value(m.clone()).ok());
        let method = j.method.or(named).or(recorded).unwrap_or_default();
        Ok(Manifest {
            schema_version: j.schema_version,
            trtforge_version: j.trtforge_version,
            name: j.name,
            created_unix: j.created_unix,
            source: j.source,
            model_config: j.model_config,
            precision,
            method,
            build: j.build,
            onnx: j.onnx,
            tokenizer: j.tokenizer,
            files: j.files,
            extra: j.extra,
        })
    }
}

impl From<Manifest> for ManifestJson {
    fn from(m: Manifest) -> Self {
        ManifestJson {
            schema_version: m.schema_version,
            trtforge_version: m.trtforge_version,
            name: m.name,
            created_unix: m.created_unix,
            source: m.source,
            model_config: m.model_config,
            precision: precision_name(m.precision, m.method).into(),
            method: m.precision.is_quantized().then_some(m.method),
            build: m.build,
            onnx: m.onnx,
            tokenizer: m.tokenizer,
            files: m.files,
            extra: m.extra,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SourceInfo {
    /// The `model.path` of the config.
    pub spec: String,
    pub kind: String,
    /// SHA-256 of the checkpoint's files (concatenated in name order); None for presets.
    pub sha256: Option<String>,
    pub seed: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TensorIo {
    pub name: String,
    pub dtype: String,
    /// Fixed sizes as numbers, dynamic axes by name.
    pub dims: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OnnxInfo {
    pub file: String,
    pub external_data: Option<String>,
    pub opset: i64,
    pub attention: AttentionForm,
    pub dtype: String,
    pub inputs: Vec<TensorIo>,
    pub outputs: Vec<TensorIo>,
    pub dynamic_axes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileInfo {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

impl Manifest {
    /// The KV cache format an engine's manifest records, and its bytes per token.
    pub fn kv_format(&self) -> (String, f64) {
        let m = self;
        let c = &m.model_config;
        if let Some(kv) = m.extra.get("quantization").and_then(|q| q.get("kv_cache")) {
            let name = format!(
                "{} ({}{})",
                kv.get("dtype").and_then(|v| v.as_str()).unwrap_or("?"),
                kv.get("scales").and_then(|v| v.as_str()).unwrap_or("?"),
                crate::quant::kv::k_form_label(
                    kv.get("smooth_k").and_then(|v| v.as_bool()) == Some(true),
                    kv.get("rotate").is_some_and(|r| !r.is_null()),
                )
            );
            return (name, kv.get("bytes_per_token").and_then(|v| v.as_f64()).unwrap_or(0.0));
        }
        let elem = if m.onnx.dtype == "float32" { 4 } else { 2 };
        (m.onnx.dtype.clone(), (2 * c.num_hidden_layers * c.kv_dim() * elem) as f64)
    }

    /// The `precision` string as configs write it ("int4_awq", "fp8", ...).
    pub fn precision_name(&self) -> &'static str {
        precision_name(self.precision, self.method)
    }

    pub fn load(dir: &Path) -> Result<Self> {
        let p = dir.join(MANIFEST_FILE);
        // An engine dir a killed `convert --force` left moved aside is put back first.
        crate::util::atomic::restore_aside(dir);
        let text = std::fs::read_to_string(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                let what = if dir.is_dir() { "is not an engine directory" } else { "does not exist" };
                Error::Invalid(format!(
                    "{} {what}: no {MANIFEST_FILE} (engine directories are made by `trtforge convert`)",
                    dir.display()
                ))
            } else {
                Error::io(&p, e)
            }
        })?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::format(&p, format!("invalid JSON: {e}")))?;
        let ver = v.get("schema_version").and_then(|x| x.as_u64());
        if ver != Some(SCHEMA_VERSION as u64) {
            return Err(Error::format(
                &p,
                format!(
                    "manifest schema version {ver:?}, this trtforge ({}) reads version {SCHEMA_VERSION}; re-run `trtforge convert`",
                    env!("CARGO_PKG_VERSION")
                ),
            ));
        }
        let m: Manifest = serde_json::from_value(v).map_err(|e| Error::format(&p, format!("invalid manifest: {e}")))?;
        m.check_consistent().map_err(|msg| Error::format(&p, format!("invalid manifest: {msg}")))?;
        Ok(m)
    }

    /// What every reader relies on, checked once at load: file names are plain names inside the
    /// engine dir (never `..` or a path elsewhere), the model config is valid, and the build
    /// shapes are within range. An edited or damaged manifest is an error here, not a crash later.
    fn check_consistent(&self) -> std::result::Result<(), String> {
        let plain = |what: &str, n: &str| -> std::result::Result<(), String> {
            let p = Path::new(n);
            let ok =
                !n.is_empty() && n != "." && n != ".." && !n.contains(['/', '\\', '\0']) && p.components().count() == 1;
            if ok {
                Ok(())
            } else {
                Err(format!("{what} {n:?} is not a plain file name inside the engine dir"))
            }
        };
        for f in &self.files {
            plain("files[].name", &f.name)?;
        }
        plain("onnx.file", &self.onnx.file)?;
        if let Some(x) = &self.onnx.external_data {
            plain("onnx.external_data", x)?;
        }
        if let Some(t) = &self.tokenizer {
            plain("tokenizer", t)?;
        }
        self.model_config.validate().map_err(|e| e.to_string())?;
        // The exported graph takes one key and one value cache input a layer (all attention forms).
        let caches = self.onnx.inputs.iter().filter(|t| t.name.starts_with("past_key_values.")).count();
        let layers = self.model_config.num_hidden_layers;
        if caches > 0 && caches != 2 * layers {
            return Err(format!(
                "model_config says {layers} layers, but onnx.inputs has {caches} past_key_values inputs ({} layers)",
                caches / 2
            ));
        }
        self.check_facts_agree()?;
        let b = &self.build;
        if b.max_batch_size == 0
            || b.max_batch_size > crate::engine_dir::config::MAX_BATCH
            || b.max_seq_len == 0
            || b.max_seq_len > crate::engine_dir::config::MAX_SEQ
            || b.max_input_len == 0
            || b.max_input_len > b.max_seq_len
        {
            return Err(format!(
                "build section out of range (max_batch_size {}, max_input_len {}, max_seq_len {})",
                b.max_batch_size, b.max_input_len, b.max_seq_len
            ));
        }
        Ok(())
    }

    /// Where the manifest states a fact twice, the two agree: the logits' last dim is
    /// `model_config.vocab_size`; every KV cache tensor is (batch, num_key_value_heads, tokens,
    /// head_dim) in `onnx.dtype`; `onnx.dtype` is float32 for fp32 weights and float16 for the others
    /// (quantized weights keep fp16 activations). An edited manifest that contradicts itself would
    /// otherwise run with one of the two values silently.
    fn check_facts_agree(&self) -> std::result::Result<(), String> {
        let c = &self.model_config;
        let dim = |t: &TensorIo, i: usize| t.dims.get(i).and_then(|d| d.as_u64());
        for t in self.onnx.outputs.iter().filter(|t| t.name == "logits") {
            if let Some(v) = dim(t, 2).filter(|&v| v != c.vocab_size as u64) {
                return Err(format!(
                    "onnx.outputs logits has {v} entries per token, but model_config.vocab_size is {}",
                    c.vocab_size
                ));
            }
        }
        let want = if self.precision == WeightFormat::F32 { "float32" } else { "float16" };
        if self.onnx.dtype != want {
            return Err(format!(
                "onnx.dtype is {:?}, but precision {} keeps its activations in {want}",
                self.onnx.dtype,
                self.precision_name()
            ));
        }
        for t in self.onnx.inputs.iter().chain(&self.onnx.outputs).filter(|t| t.name.contains("key_values.")) {
            let (heads, hd) = (dim(t, 1), dim(t, 3));
            if heads.is_some_and(|h| h != c.num_key_value_heads as u64) || hd.is_some_and(|d| d != c.head_dim as u64) {
                return Err(format!(
                    "{} is {:?}, but model_config has {} KV heads of dim {}",
                    t.name, t.dims, c.num_key_value_heads, c.head_dim
                ));
            }
            if t.dtype != self.onnx.dtype {
                return Err(format!("{} is {}, but onnx.dtype is {}", t.name, t.dtype, self.onnx.dtype));
            }
        }
        Ok(())
    }

    /// The `--model` spec of the checkpoint this engine was converted from, usable from any working
    /// directory: presets as recorded; files by their absolute path (recorded since convert makes it
    /// absolute), or for older engine dirs a relative one tried from the working directory and from
    /// the engine dir. A file found is checked against the recorded SHA-256, so a moved engine dir
    /// never silently runs other weights.
    pub fn source_model(&self, dir: &Path) -> Result<String> {
        let s = &self.source;
        if s.kind.starts_with("preset:") {
            // The seed is part of the weights: `spec` holds the config's path, which may lack it.
            return Ok(match s.seed {
                Some(seed) => format!("{}:{seed}", s.kind),
                None => s.spec.clone(),
            });
        }
        let spec = Path::new(&s.spec);
        let candidates: Vec<std::path::PathBuf> =
            if spec.is_absolute() { vec![spec.into()] } else { vec![spec.into(), dir.join(spec)] };
        let Some(found) = candidates.iter().find(|p| p.exists()) else {
            return Err(Error::Invalid(format!(
                "the source model {} of engine dir {} is not there (the cpu and cuda backends of fp32/fp16 \
engines run the source weights); restore it or re-run `trtforge convert`",
                s.spec,
                dir.display()
            )));
        };
        if let Some(want) = &s.sha256 {
            let got = source_sha256(&s.kind, found)?;
            if &got != want {
                return Err(Error::Invalid(format!(
                    "the source model {} has changed since {} was converted (SHA-256 {got}, manifest {want}); \
re-run `trtforge convert`",
                    found.display(),
                    dir.display()
                )));
            }
        }
        Ok(found.to_string_lossy().into_owned())
    }

    /// Checks that every listed file exists with the recorded size, and the contents (SHA-256) of
    /// every file modified after the manifest was written: trtforge writes the manifest last, so a
    /// newer file is one edited (or copied without its times) since — cheap in the normal case, and
    /// an edit that keeps the size is still caught. A missing output of `trtforge build`
    /// ([`REBUILDABLE`]) is not damage: build makes it again, and the backend that needs it says so.
    pub fn check_files(&self, dir: &Path) -> Result<()> {
        let written = std::fs::metadata(dir.join(MANIFEST_FILE)).and_then(|m| m.modified()).ok();
        let mut newer = Vec::new();
        for f in &self.files {
            let p = dir.join(&f.name);
            let md = match std::fs::metadata(&p) {
                Ok(md) => md,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && REBUILDABLE.contains(&f.name.as_str()) => {
                    continue
                }
                Err(e) => return Err(Error::io(&p, e)),
            };
            if md.len() != f.bytes {
                return Err(Error::format(
                    &p,
                    format!(
                        "size {} does not match the manifest ({} bytes); the engine directory is damaged",
                        md.len(),
                        f.bytes
                    ),
                ));
            }
            if written.is_some_and(|w| md.modified().is_ok_and(|m| m > w)) {
                newer.push(f.name.as_str());
            }
        }
        if !newer.is_empty() {
            let t = std::time::Instant::now();
            self.verify_hashes(dir, |n| newer.contains(&n))?;
            if t.elapsed().as_secs_f64() > 1.0 {
                crate::util::errln!(
                    "note: checked {} against {}'s SHA-256 since they are newer than it ({:.1} s); \
                     `touch {}` once they are known good skips this",
                    newer.join(", "),
                    MANIFEST_FILE,
                    t.elapsed().as_secs_f64(),
                    dir.join(MANIFEST_FILE).display()
                );
            }
        }
        Ok(())
    }

    /// Hashes the listed files `which` selects and checks them against the manifest; returns them
    /// as found. An edited file is an error that says what to re-run.
    pub fn verify_hashes(&self, dir: &Path, which: impl Fn(&str) -> bool) -> Result<Vec<FileInfo>> {
        let mut out = Vec::new();
        for f in self.files.iter().filter(|f| which(&f.name)) {
            let p = dir.join(&f.name);
            let got = sha256_files(&[&p])?;
            if got != f.sha256 {
                let (stage, again) = if REBUILDABLE.contains(&f.name.as_str()) {
                    ("build", "`trtforge build`")
                } else {
                    ("convert", "`trtforge convert --force`")
                };
                return Err(Error::format(
                    &p,
                    format!(
                        "contents changed since `trtforge {stage}` wrote it (SHA-256 {got}, manifest {}); \
re-run {again} to make the engine dir consistent",
                        f.sha256
                    ),
                ));
            }
            let bytes = std::fs::metadata(&p).map_err(|e| Error::io(&p, e))?.len();
            out.push(FileInfo { name: f.name.clone(), bytes, sha256: got });
        }
        Ok(out)
    }
}

/// Proves that `dir` is an engine directory trtforge wrote, so `convert --force` may replace it:
/// its manifest names this tool and every entry in it is the manifest, a file the manifest lists,
/// a build output ([`REBUILDABLE`], as files) or a trtforge temporary. Anything else there is the user's; then nothing is replaced. An empty
/// directory holds nothing to lose. (The manifest is read loosely, so engine dirs of older schema
/// versions can be replaced too.)
pub fn check_replaceable(dir: &Path) -> Result<()> {
    let refuse = |why: String| {
        Err(Error::Invalid(format!(
            "{} {why}; trtforge replaces only engine directories it wrote. Choose another output_dir or move it away",
            dir.display()
        )))
    };
    let md = std::fs::symlink_metadata(dir).map_err(|e| Error::io(dir, e))?;
    if !md.is_dir() {
        return refuse("is not a directory".into());
    }
    // (name, is a directory): a listed name may only be a file (or a link, which replacing unlinks).
    let typed: Vec<(String, bool)> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .map(|e| e.and_then(|e| Ok((e.file_name().to_string_lossy().into_owned(), e.file_type()?.is_dir()))))
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io(dir, e))?;
    let entries: Vec<String> = typed.iter().map(|(n, _)| n.clone()).collect();
    if entries.is_empty() {
        return Ok(());
    }
    let p = dir.join(MANIFEST_FILE);
    let listed: Option<Vec<String>> = std::fs::read(&p)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .filter(|v| v.get("trtforge_version").is_some_and(|x| x.is_string()))
        .and_then(|v| v.get("files")?.as_array()?.iter().map(|f| f.get("name")?.as_str().map(String::from)).collect());
    let Some(listed) = listed else {
        return refuse(format!("has no trtforge manifest ({MANIFEST_FILE})"));
    };
    // trtforge's own build outputs count as listed: a build killed after installing model.engine
    // and before updating the manifest leaves one unlisted.
    let foreign: Vec<&String> = entries
        .iter()
        .filter(|n| {
            *n != MANIFEST_FILE
                && !listed.contains(n)
                && !REBUILDABLE.contains(&n.as_str())
                && crate::util::atomic::temp_owner(n).is_none()
        })
        .collect();
    if !foreign.is_empty() {
        return refuse(format!("holds files its manifest does not list ({foreign:?})"));
    }
    let dirs: Vec<&String> =
        typed.iter().filter(|(n, d)| *d && crate::util::atomic::temp_owner(n).is_none()).map(|(n, _)| n).collect();
    if !dirs.is_empty() {
        return refuse(format!("holds directories where its manifest lists files ({dirs:?})"));
    }
    Ok(())
}

/// SHA-256 of a checkpoint as the manifest records it: a GGUF file's bytes, or an HF directory's
/// config.json and *.safetensors concatenated in name order.
pub fn source_sha256(kind: &str, path: &Path) -> Result<String> {
    if kind != "hf" {
        return sha256_files(&[path]);
    }
    let mut names: Vec<std::path::PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Error::io(path, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n == "config.json" || n.ends_with(".safetensors")
        })
        .collect();
    names.sort();
    let refs: Vec<&Path> = names.iter().map(|p| p.as_path()).collect();
    sha256_files(&refs)
}

/// The TensorRT engine file `trtforge build` writes into an engine directory.
pub const ENGINE_FILE: &str = "model.engine";
/// Key of the manifest's `extra` section that `trtforge build` writes ([`TrtManifest`]).
pub const TRT_MANIFEST_KEY: &str = "tensorrt";

/// min/opt/max of one input in one profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapeRange {
    pub min: Vec<i64>,
    pub opt: Vec<i64>,
    pub max: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileInfo {
    /// "prefill" or "decode".
    pub name: String,
    pub inputs: BTreeMap<String, ShapeRange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IoInfo {
    pub name: String,
    pub dtype: String,
    /// -1 for dynamic axes.
    pub shape: Vec<i64>,
}

/// What the timing cache did for a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheOutcome {
    /// Disabled.
    Off,
    /// No cache file yet: built from scratch, cache written.
    Miss,
    /// A cache file existed but the build added entries to it.
    Partial,
    /// A cache file existed and the build needed nothing new.
    Hit,
}

/// The manifest's `tensorrt` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrtManifest {
    pub flavour: String,
    pub version: String,
    pub library: String,
    /// ["sm89", ...] (TensorRT-RTX ahead-of-time); empty for TensorRT, which builds for the GPU present.
    pub targets: Vec<String>,
    pub attention: AttentionForm,
    pub optimization_level: Option<u8>,
    pub workspace_bytes: Option<u64>,
    pub profiles: Vec<ProfileInfo>,
    pub inputs: Vec<IoInfo>,
    pub outputs: Vec<IoInfo>,
    pub layers: i32,
    pub engine_file: String,
    pub engine_bytes: u64,
    pub engine_sha256: String,
    pub build_seconds: f64,
    /// TensorRT's timing cache (full TensorRT only: TensorRT-RTX makes timing-cache operations
    /// no-ops, as its own deprecation message says).
    pub timing_cache: CacheOutcome,
    pub timing_cache_file: Option<String>,
    /// trtforge's compilation cache: engines keyed by the SHA-256 of everything that decides
    /// their bytes (ONNX files, library version, targets, settings, profiles).
    pub build_cache: CacheOutcome,
    pub build_cache_key: String,
}

impl TrtManifest {
    pub fn from_manifest(m: &Manifest) -> Option<std::result::Result<Self, String>> {
        m.extra.get(TRT_MANIFEST_KEY).map(|v| serde_json::from_value(v.clone()).map_err(|e| e.to_string()))
    }
}
