//! `trtforge convert`: checkpoint → engine directory (ONNX + tokenizer + manifest), written atomically.
//! Quantized precisions are calibrated and quantized on the way ([`calibrate`]).
pub mod calibrate;

use crate::engine_dir::config::{AttentionForm, EngineConfig};
use crate::engine_dir::manifest::{self, FileInfo, Manifest, OnnxInfo, SourceInfo, TensorIo, MANIFEST_FILE};
use crate::error::{Error, Result};
use crate::model::load::{load, LoadedModel, ModelSource};
use crate::onnx::export::{
    export_llama_with, ExportOptions, FloatType, EXTERNAL_DATA_FILE, OPSET_PORTABLE, OPSET_QUANTIZED,
};
use crate::quant::WeightFormat;
use crate::util::atomic::TempDir;
use crate::util::sha256_bytes;
use prost::Message;
use std::path::{Path, PathBuf};

pub const ONNX_FILE: &str = "model.onnx";
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Converts the model a config names; returns the engine directory.
pub fn convert(cfg: &EngineConfig, force: bool, log: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    cfg.validate()?;
    let out = cfg.output_dir();
    // An engine dir a killed `convert --force` left moved aside is put back before it is judged.
    crate::util::atomic::restore_aside(&out);
    // Before any work: an existing output is replaced only with --force, and only when it is an
    // engine directory trtforge wrote.
    if std::fs::symlink_metadata(&out).is_ok() {
        if !force {
            return Err(Error::Invalid(format!("{} already exists; pass --force to replace it", out.display())));
        }
        manifest::check_replaceable(&out)?;
        // Replacing removes its files: in a read-only dir they would stay behind as an undeletable
        // hidden temporary.
        crate::util::atomic::check_writable(&out).map_err(|e| {
            Error::Invalid(format!(
                "--force cannot replace {}: its files could not be removed ({e}); make it writable \
(chmod -R u+w) or choose another output_dir",
                out.display()
            ))
        })?;
    }
    // The engine dir is made beside `out` and renamed into place: that folder must take files
    // before the load, calibration and export, not after them.
    crate::util::atomic::check_writable(crate::util::atomic::parent_of(&out))?;
    // Quantized precisions are weight-only: activations (and the KV cache) stay fp16.
    let dtype = match cfg.quantization.precision {
        WeightFormat::F32 => FloatType::F32,
        WeightFormat::F16 | WeightFormat::I8 | WeightFormat::I4 { .. } | WeightFormat::F8 => FloatType::F16,
    };
    // A seed is a preset's, and one without its own (EngineConfig::validate).
    let spec = match cfg.model.seed {
        Some(seed) => format!("{}:{seed}", cfg.model.path),
        None => cfg.model.path.clone(),
    };
    log(&format!("loading {spec}"));
    let mut m = load(&spec)?;
    for w in m.warnings() {
        log(&format!("warning: {w}"));
    }
    if cfg.build.max_seq_len > m.weights.config.max_position_embeddings {
        return Err(Error::Invalid(format!(
            "build.max_seq_len {} exceeds the model's context of {} tokens",
            cfg.build.max_seq_len, m.weights.config.max_position_embeddings
        )));
    }
    let quant = calibrate::quantize_for_config(cfg, &mut m.weights, m.tokenizer.as_ref(), log)?;
    let c = &m.weights.config;
    let source = source_info(&m, &cfg.model.path)?;
    log(&format!("exporting ONNX ({}, attention {:?})", dtype.name(), cfg.onnx.attention));
    let opts = ExportOptions {
        dtype,
        attention: cfg.onnx.attention,
        max_positions: cfg.build.max_seq_len,
        force_external: cfg.onnx.external_data,
        kv_cache: quant.as_ref().and_then(|q| q.kv.as_ref()).and_then(|(d, _, s)| s.clone().map(|s| (*d, s))),
        kv_k_mean: quant.as_ref().and_then(|q| q.kv_k_mean.clone()),
        kv_rotation: quant.as_ref().and_then(|q| q.kv_rotation.clone()),
    };
    let (opset, q) = match &quant {
        Some(q) => (OPSET_QUANTIZED, Some(&q.quantized)),
        None => (OPSET_PORTABLE, None),
    };
    let onnx = export_llama_with(&m.weights, &opts, opset, q)?;

    let parent = crate::util::atomic::parent_of(&out);
    let dir_name = out.file_name().unwrap_or(std::ffi::OsStr::new(&cfg.name));
    let tmp = TempDir::new(parent, dir_name)?;
    let mut files = Vec::new();
    let mut write = |name: &str, bytes: &[u8]| -> Result<()> {
        let p = tmp.path.join(name);
        std::fs::write(&p, bytes).map_err(|e| Error::io(&p, e))?;
        files.push(FileInfo { name: name.into(), bytes: bytes.len() as u64, sha256: sha256_bytes(bytes) });
        Ok(())
    };
    log(&format!("writing {}", out.display()));
    write(ONNX_FILE, &onnx.model.encode_to_vec())?;
    let external = !onnx.external.is_empty();
    if external {
        write(EXTERNAL_DATA_FILE, &onnx.external)?;
    }
    if let Some(mean) = quant.as_ref().and_then(|q| q.kv_k_mean.as_ref()) {
        // K smoothing's means, for every engine that writes the cache (docs/formats.md).
        write(crate::quant::kv::K_MEAN_FILE, &crate::quant::kv::k_mean_to_bytes(mean))?;
    }
    let tokenizer = match &m.tokenizer {
        Some(t) => {
            write(TOKENIZER_FILE, t.to_json()?.as_bytes())?;
            // Beside it, as in an HF checkpoint: special tokens + chat template, and stop ids.
            write("tokenizer_config.json", t.config_json()?.as_bytes())?;
            write(crate::model::tokenizer::GENERATION_CONFIG, t.generation_config_json()?.as_bytes())?;
            Some(TOKENIZER_FILE.to_string())
        }
        None => None,
    };
    let dt = dtype.name().to_string();
    let kv_dims =
        |t: &str| vec!["batch".into(), (c.num_key_value_heads as u64).into(), t.into(), (c.head_dim as u64).into()];
    let io = |names: &[String], is_input: bool| -> Vec<TensorIo> {
        names
            .iter()
            .map(|n| {
                let (dtype, dims): (String, Vec<serde_json::Value>) = match n.as_str() {
                    "input_ids" | "position_ids" => ("int64".into(), vec!["batch".into(), "seq".into()]),
                    "attention_mask" => ("int64".into(), vec!["batch".into(), "total".into()]),
                    "past_seq_lens" => ("int64".into(), vec!["batch".into()]),
                    "logits" => ("float32".into(), vec!["batch".into(), "seq".into(), (c.vocab_size as u64).into()]),
                    _ if cfg.onnx.attention == AttentionForm::Tensorrt => {
                        (dt.clone(), kv_dims(&cfg.build.max_seq_len.to_string()))
                    }
                    _ => (dt.clone(), kv_dims(if is_input { "past" } else { "total" })),
                };
                TensorIo { name: n.clone(), dtype, dims }
            })
            .collect()
    };
    let manifest = Manifest {
        schema_version: manifest::SCHEMA_VERSION,
        trtforge_version: env!("CARGO_PKG_VERSION").into(),
        name: cfg.name.clone(),
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        source,
        model_config: c.clone(),
        precision: cfg.quantization.precision,
        method: cfg.quantization.method,
        build: cfg.build.clone(),
        onnx: OnnxInfo {
            file: ONNX_FILE.into(),
            external_data: external.then(|| EXTERNAL_DATA_FILE.to_string()),
            opset: onnx.opset,
            attention: cfg.onnx.attention,
            dtype: dt.clone(),
            inputs: io(&onnx.input_names, true),
            outputs: io(&onnx.output_names, false),
            dynamic_axes: vec!["batch".into(), "seq".into(), "past".into(), "total".into()],
        },
        tokenizer,
        extra: quant_section(quant.map(|q| q.section), &files),
        files,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Invalid(format!("manifest: {e}")))?;
    let mp = tmp.path.join(MANIFEST_FILE);
    std::fs::write(&mp, json).map_err(|e| Error::io(&mp, e))?;
    // Checked again: the directory may have changed while we converted.
    if std::fs::symlink_metadata(&out).is_ok() {
        if !force {
            return Err(Error::Invalid(format!("{} already exists; pass --force to replace it", out.display())));
        }
        manifest::check_replaceable(&out)?;
    }
    tmp.commit(&out, force)?;
    Ok(out)
}

/// `extra["quantization"]`: what the quantization stage recorded, plus the model's size on disk.
fn quant_section(
    section: Option<serde_json::Map<String, serde_json::Value>>,
    files: &[FileInfo],
) -> serde_json::Map<String, serde_json::Value> {
    let mut extra = serde_json::Map::new();
    if let Some(mut q) = section {
        let bytes: u64 =
            files.iter().filter(|f| f.name == ONNX_FILE || f.name == EXTERNAL_DATA_FILE).map(|f| f.bytes).sum();
        q.insert("model_bytes".into(), bytes.into());
        extra.insert("quantization".into(), q.into());
    }
    extra
}

fn source_info(m: &LoadedModel, spec: &str) -> Result<SourceInfo> {
    // Files are recorded by absolute path so the engine dir works from any directory.
    let file = |kind: &str, p: &Path| -> Result<SourceInfo> {
        let abs = std::fs::canonicalize(p).map_err(|e| Error::io(p, e))?;
        Ok(SourceInfo {
            spec: abs.to_string_lossy().into_owned(),
            kind: kind.into(),
            sha256: Some(manifest::source_sha256(kind, &abs)?),
            seed: None,
        })
    };
    match &m.source {
        ModelSource::Preset { name, seed } => {
            Ok(SourceInfo { spec: spec.into(), kind: format!("preset:{name}"), sha256: None, seed: Some(*seed) })
        }
        ModelSource::Gguf(p) => file("gguf", p),
        ModelSource::Hf(dir) => file("hf", dir),
    }
}
