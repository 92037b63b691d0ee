//! Engine configs (YAML): one file describes one engine from source model to build settings.
//! Strict: an unknown key is an error that names the key, the file and the line.
use crate::error::{Error, Result};
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

/// A config's `quantization.precision`: a [`WeightFormat`] plus, for int4, how its codes are
/// chosen (`int4_rtn` round-to-nearest, `int4_awq` calibrated AWQ). Everything below the config
/// speaks [`WeightFormat`] ([`Precision::format`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    #[default]
    Fp32,
    Fp16,
    Int8,
    Int4Rtn,
    Int4Awq,
    /// FP8 E4M3 weights (per output channel) and activations (static per-tensor scales from calibration).
    Fp8,
}

impl Precision {
    /// The weight format; `group` is int4's group size.
    pub fn format(self, group: usize) -> WeightFormat {
        match self {
            Precision::Fp32 => WeightFormat::F32,
            Precision::Fp16 => WeightFormat::F16,
            Precision::Int8 => WeightFormat::I8,
            Precision::Int4Rtn | Precision::Int4Awq => WeightFormat::I4 { group },
            Precision::Fp8 => WeightFormat::F8,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
            Precision::Int8 => "int8",
            Precision::Int4Rtn => "int4_rtn",
            Precision::Int4Awq => "int4_awq",
            Precision::Fp8 => "fp8",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantSection {
    #[serde(default)]
    pub precision: Precision,
    #[serde(default = "default_group")]
    pub group_size: usize,
    #[serde(default)]
    pub calibration: Option<CalibrationSection>,
    /// INT4: when `group_size` does not divide a layer's input dimension (SmolLM2: 576 with 128),
    /// zero-pad that dimension to whole groups in the stored weights instead of failing
    /// (TensorRT accepts only whole blocks). See docs/formats.md.
    #[serde(default)]
    pub pad_to_group: bool,
    /// FP8: the activation range each static scale maps onto ±448 — the calibration amax (None,
    /// the default) or this percentile of |x| over all calibration tokens (e.g. 99.99).
    #[serde(default)]
    pub activation_percentile: Option<f64>,
    /// Element type of the KV cache: fp16 (the engine's float type), fp8 or int8 (per-head scales).
    #[serde(default)]
    pub kv_cache: KvCacheDtype,
    /// fp8/int8 KV: static per-head scales from calibration, or dynamic per 16-token block.
    #[serde(default)]
    pub kv_scales: KvScaleMode,
}

impl Default for QuantSection {
    fn default() -> Self {
        QuantSection {
            precision: Precision::Fp32,
            group_size: default_group(),
            calibration: None,
            pad_to_group: false,
            activation_percentile: None,
            kv_cache: KvCacheDtype::Fp16,
            kv_scales: KvScaleMode::Calibrated,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSection {
    pub max_batch_size: usize,
    pub max_input_len: usize,
    /// Prompt + generated tokens.
    pub max_seq_len: usize,
    pub opt_batch_size: usize,
    /// Compute capabilities for TensorRT ahead-of-time builds, e.g. "sm89".
    #[serde(default = "default_targets")]
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
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
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
        if matches!(q.precision, Precision::Int4Rtn | Precision::Int4Awq) && ![16, 32, 64, 128].contains(&q.group_size)
        {
            return bad(format!("quantization.group_size {} must be 16, 32, 64 or 128", q.group_size));
        }
        if q.precision == Precision::Int4Awq && q.calibration.is_none() {
            return bad("quantization.precision int4_awq needs a calibration section".into());
        }
        if q.precision == Precision::Fp8 && q.calibration.is_none() {
            return bad(
                "quantization.precision fp8 needs a calibration section (its static activation scales come from it)"
                    .into(),
            );
        }
        if let Some(p) = q.activation_percentile {
            if !(p > 50.0 && p <= 100.0) {
                return bad(format!("quantization.activation_percentile {p} must be in (50, 100]"));
            }
            if q.precision != Precision::Fp8 {
                return bad(format!(
                    "quantization.activation_percentile applies to precision fp8 (activations), not {}",
                    q.precision.as_str()
                ));
            }
        }
        if q.kv_cache.quantized() {
            if q.precision == Precision::Fp32 {
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

    #[test]
    fn unknown_precision_is_an_error() {
        let y = "name: x\nmodel: {path: preset:tiny}\nquantization: {precision: int3}\n";
        let e = serde_saphyr::from_str::<EngineConfig>(y).unwrap_err().to_string();
        assert!(e.contains("int3"), "{e}");
    }
}
