//! `trtforge.json`: what an engine directory holds and how it was made. Never infer from file names.
use super::config::{AttentionForm, BuildSection, Precision};
use crate::error::{Error, Result};
use crate::model::LlamaConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const MANIFEST_FILE: &str = "trtforge.json";
/// Bumped on any incompatible change to the manifest or the files it describes.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub schema_version: u32,
    pub trtforge_version: String,
    pub name: String,
    /// Seconds since the Unix epoch.
    pub created_unix: u64,
    pub source: SourceInfo,
    pub model_config: LlamaConfig,
    pub precision: Precision,
    pub build: BuildSection,
    pub onnx: OnnxInfo,
    /// `tokenizer.json` beside the model, if the source had a tokenizer.
    pub tokenizer: Option<String>,
    /// Every file of the directory with its size and SHA-256.
    pub files: Vec<FileInfo>,
    /// Stage-specific sections (quantization, tensorrt) added by later stages.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
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
    pub fn load(dir: &Path) -> Result<Self> {
        let p = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
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
        serde_json::from_value(v).map_err(|e| Error::format(&p, format!("invalid manifest: {e}")))
    }

    /// Checks that every listed file exists with the recorded size (hashes are checked by `verify_hashes`).
    pub fn check_files(&self, dir: &Path) -> Result<()> {
        for f in &self.files {
            let p = dir.join(&f.name);
            let md = std::fs::metadata(&p).map_err(|e| Error::io(&p, e))?;
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
        }
        Ok(())
    }
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

