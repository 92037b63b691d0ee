//! HF checkpoint directories: `config.json` plus `model.safetensors` or a sharded
//! `model.safetensors.index.json`. Tensors are memory-mapped and converted to f32 on request.
use super::config::LlamaConfig;
use super::tensor::Tensor;
use super::weights::{NameScheme, TensorSource};
use crate::error::{Error, Result};
use half::{bf16, f16};
use rayon::prelude::*;
use safetensors::{Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Where one tensor lives inside a safetensors file.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorEntry {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Absolute byte range in the file.
    pub range: Range<usize>,
}

/// Parses a whole safetensors file held in `bytes` into its table of contents; never panics.
/// The `safetensors` crate checks the header length, the JSON, and that the data offsets are
/// contiguous, match each dtype × shape, and end exactly at the end of the file.
pub fn parse_shard(path: &Path, bytes: &[u8]) -> Result<HashMap<String, TensorEntry>> {
    let bad = |e: safetensors::SafeTensorError| Error::format(path, format!("invalid safetensors file: {e}"));
    let (header_len, meta) = SafeTensors::read_metadata(bytes).map_err(bad)?;
    let data_start = 8 + header_len; // u64 header length, then the JSON header
    meta.tensors()
        .into_iter()
        .map(|(name, info)| {
            let (s, e) = info.data_offsets;
            let range = data_start + s..data_start + e;
            if range.end > bytes.len() {
                return Err(Error::format(path, format!("tensor {name:?} data extends past end of file")));
            }
            Ok((name, TensorEntry { dtype: info.dtype, shape: info.shape.clone(), range }))
        })
        .collect()
}

/// Converts little-endian F32/F16/BF16 bytes to f32; `None` for other dtypes.
/// Safetensors data need not be aligned in the map, so decode byte chunks rather than cast pointers.
pub fn decode_f32(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    const CHUNK: usize = 1 << 16; // elements per rayon task
    let size = match dtype {
        Dtype::F32 => 4,
        Dtype::F16 | Dtype::BF16 => 2,
        _ => return None,
    };
    let mut out = vec![0.0f32; bytes.len() / size]; // (numel)
    out.par_chunks_mut(CHUNK).zip(bytes.par_chunks(CHUNK * size)).for_each(|(o, b)| {
        let src = b.chunks_exact(size);
        match dtype {
            Dtype::F16 => o.iter_mut().zip(src).for_each(|(o, c)| *o = f16::from_le_bytes([c[0], c[1]]).to_f32()),
            Dtype::BF16 => o.iter_mut().zip(src).for_each(|(o, c)| *o = bf16::from_le_bytes([c[0], c[1]]).to_f32()),
            _ => o.iter_mut().zip(src).for_each(|(o, c)| *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        }
    });
    Some(out)
}

struct Shard {
    path: PathBuf,
    mmap: memmap2::Mmap,
}

/// An HF checkpoint directory, every shard mapped once.
pub struct HfCheckpoint {
    dir: PathBuf,
    config: LlamaConfig,
    shards: Vec<Shard>,
    /// Tensor name → (index into `shards`, location in that shard).
    tensors: HashMap<String, (usize, TensorEntry)>,
}

fn map_shard(path: &Path) -> Result<(Shard, HashMap<String, TensorEntry>)> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: the map is read-only and owned by the checkpoint; trtforge never writes a checkpoint
    // while reading it. Another process truncating the file underneath us is outside our model.
    let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    let entries = parse_shard(path, &mmap)?;
    Ok((Shard { path: path.to_path_buf(), mmap }, entries))
}

impl HfCheckpoint {
    pub fn open(dir: &Path) -> Result<Self> {
        let config = LlamaConfig::from_hf_json(&dir.join("config.json"))?;
        let single = dir.join("model.safetensors");
        let index_path = dir.join("model.safetensors.index.json");
        let mut shards = Vec::new();
        let mut tensors = HashMap::new();
        if single.is_file() {
            let (shard, entries) = map_shard(&single)?;
            shards.push(shard);
            tensors.extend(entries.into_iter().map(|(name, e)| (name, (0, e))));
        } else if index_path.is_file() {
            let text = std::fs::read_to_string(&index_path).map_err(|e| Error::io(&index_path, e))?;
            let weight_map = parse_index(&index_path, &text)?;
            // Open each shard once, in a stable order.
            let mut files: Vec<&String> = weight_map.values().collect();
            files.sort();
            files.dedup();
            let mut by_file = HashMap::new();
            for file in files {
                let path = dir.join(file);
                if !path.is_file() {
                    return Err(Error::format(
                        &index_path,
                        format!("shard {file:?} listed in weight_map is missing from {}", dir.display()),
                    ));
                }
                let (shard, entries) = map_shard(&path)?;
                by_file.insert(file.as_str(), (shards.len(), entries));
                shards.push(shard);
            }
            for (name, file) in &weight_map {
                let (i, entries) = &by_file[file.as_str()];
                let entry = entries.get(name).ok_or_else(|| {
                    Error::format(&index_path, format!("weight_map sends {name:?} to {file:?}, which lacks it"))
                })?;
                tensors.insert(name.clone(), (*i, entry.clone()));
            }
        } else {
            return Err(Error::format(dir, "no model.safetensors or model.safetensors.index.json in this directory"));
        }
        Ok(HfCheckpoint { dir: dir.to_path_buf(), config, shards, tensors })
    }

    /// (tensor name, safetensors dtype, element count) for every tensor, for `trtforge info`.
    pub fn tensor_dtypes(&self) -> Vec<(String, String, u64)> {
        let mut v: Vec<(String, String, u64)> = self
            .tensors
            .iter()
            .map(|(n, (_, e))| (n.clone(), format!("{:?}", e.dtype), e.shape.iter().map(|&d| d as u64).product()))
            .collect();
        v.sort();
        v
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }
}

/// The `weight_map` of a sharded index: tensor name → shard file name (a bare name in the directory).
fn parse_index(path: &Path, text: &str) -> Result<BTreeMap<String, String>> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: BTreeMap<String, String>,
    }
    let index: Index =
        serde_json::from_str(text).map_err(|e| Error::format(path, format!("invalid index JSON: {e}")))?;
    for file in index.weight_map.values() {
        if Path::new(file).file_name() != Some(file.as_ref()) {
            return Err(Error::format(path, format!("shard name {file:?} is not a plain file name")));
        }
    }
    Ok(index.weight_map)
}

impl TensorSource for HfCheckpoint {
    fn scheme(&self) -> NameScheme {
        NameScheme::Hf
    }

    fn names(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }

    fn tensor(&self, name: &str, expected: &[usize]) -> Result<Option<Tensor>> {
        let Some((i, entry)) = self.tensors.get(name) else { return Ok(None) };
        let shard = &self.shards[*i];
        if entry.shape != expected {
            return Err(Error::format(
                &shard.path,
                format!("tensor {name:?} has shape {:?}, expected {expected:?}", entry.shape),
            ));
        }
        let bytes = shard
            .mmap
            .get(entry.range.clone())
            .ok_or_else(|| Error::format(&shard.path, format!("tensor {name:?} data extends past end of file")))?;
        let data = decode_f32(entry.dtype, bytes).ok_or_else(|| {
            Error::Unsupported(format!(
                "{}: tensor {name:?} has dtype {:?}; supported: F32, F16, BF16",
                shard.path.display(),
                entry.dtype
            ))
        })?;
        Ok(Some(Tensor::new(entry.shape.clone(), data)))
    }

    fn describe(&self) -> String {
        self.dir.display().to_string()
    }
}

/// Writes `tensors` as an F32 safetensors file, atomically (see `crate::util::atomic`).
pub fn save_safetensors(path: &Path, tensors: &[(String, &Tensor)]) -> Result<()> {
    let bytes: Vec<Vec<u8>> =
        tensors.iter().map(|(_, t)| t.data.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, t), b)| {
            safetensors::tensor::TensorView::new(Dtype::F32, t.shape.clone(), b)
                .map(|v| (name.as_str(), v))
                .map_err(|e| Error::Invalid(format!("tensor {name:?}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let bytes =
        safetensors::serialize(views, None).map_err(|e| Error::format(path, format!("writing safetensors: {e}")))?;
    crate::util::atomic::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_unaligned_f16_and_bf16() {
        // One junk byte first so the data is not 2-byte aligned.
        let mut buf = vec![0u8];
        buf.extend(f16::from_f32(1.5).to_le_bytes());
        buf.extend(f16::from_f32(-2.0).to_le_bytes());
        assert_eq!(decode_f32(Dtype::F16, &buf[1..]), Some(vec![1.5, -2.0]));
        let b: Vec<u8> = bf16::from_f32(3.0).to_le_bytes().into();
        assert_eq!(decode_f32(Dtype::BF16, &b), Some(vec![3.0]));
        assert_eq!(decode_f32(Dtype::I64, &[0; 8]), None);
    }

    #[test]
    fn index_rejects_paths() {
        let p = Path::new("i.json");
        assert!(parse_index(p, r#"{"weight_map": {"a": "../x.safetensors"}}"#).is_err());
        assert!(parse_index(p, r#"{"weight_map": {"a": "x.safetensors"}}"#).is_ok());
        assert!(parse_index(p, r#"{"weight": {}}"#).is_err());
    }
}
