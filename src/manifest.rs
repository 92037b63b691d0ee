//! `trtforge.json`: what an engine directory holds and how it was made. Never infer from file names.
use crate::config::{AttentionForm, BuildSection, Precision};
use crate::error::{Error, Result};
use crate::model::LlamaConfig;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
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

/// SHA-256 of files, streamed, concatenated in the given order.
pub fn sha256_files(paths: &[&Path]) -> Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for p in paths {
        let mut f = std::fs::File::open(p).map_err(|e| Error::io(*p, e))?;
        loop {
            let n = f.read(&mut buf).map_err(|e| Error::io(*p, e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(hex(&h.finalize()))
}

pub fn sha256_bytes(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
