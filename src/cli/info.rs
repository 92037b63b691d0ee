//! `trtforge info`: model config, parameter count, tensor dtypes and memory; or what an engine dir
//! holds (precision, KV cache format and bytes per token, limits, files).
use super::loading;
use crate::engine_dir::manifest::{Manifest, MANIFEST_FILE};
use anyhow::Result;
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["model", "engine_dir"]))]
pub struct InfoArgs {
    /// A GGUF file, an HF checkpoint directory, or `preset:NAME[:SEED]` (an engine dir works too).
    #[arg(long)]
    pub model: Option<String>,
    /// An engine dir made by `trtforge convert`: its precision, KV cache format and bytes per token,
    /// build limits and files, from its manifest.
    #[arg(long)]
    pub engine_dir: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: InfoArgs) -> Result<()> {
    let model = match (a.engine_dir, a.model) {
        (Some(dir), _) => return engine_dir(&dir, a.json),
        (None, Some(m)) if Path::new(&m).join(MANIFEST_FILE).is_file() => return engine_dir(Path::new(&m), a.json),
        (None, Some(m)) => m,
        (None, None) => unreachable!("clap requires --model or --engine-dir"),
    };
    // The config, tensor table and tokenizer only: no weights are read or made.
    let m = crate::model::load::summarize(&model).map_err(|e| loading(&model, e))?;
    let c = &m.config;
    let params = c.param_count();
    // Storage type → (tensors, parameters), as found in the checkpoint.
    let mut dtypes = std::collections::BTreeMap::<&str, usize>::new();
    let mut dtype_params = std::collections::BTreeMap::<&str, u64>::new();
    for (_, d, n) in &m.tensor_dtypes {
        *dtypes.entry(d.as_str()).or_default() += 1;
        *dtype_params.entry(d.as_str()).or_default() += n;
    }
    let kv_per_token = 2 * c.num_hidden_layers * c.kv_dim();
    // 8-bit caches with dynamic per-(16-token block, head) f16 scales: the scales amortized per token.
    let kv_dynamic = crate::quant::kv::bytes_per_token(
        c.num_hidden_layers,
        c.num_key_value_heads,
        c.head_dim,
        crate::quant::kv::KvCacheDtype::Fp8,
        crate::quant::kv::KvScaleMode::Dynamic,
        2,
    );
    if a.json {
        let v = serde_json::json!({
            "source": m.source.to_string(),
            "config": c,
            "parameters": params,
            "tensor_dtypes": dtypes,
            "tensor_dtype_parameters": dtype_params,
            "memory_bytes": {"f32": params * 4, "f16": params * 2},
            "kv_cache_bytes_per_token_f16": kv_per_token * 2,
            "kv_cache_bytes_per_token": {"fp16": kv_per_token * 2, "fp8": kv_per_token, "int8": kv_per_token,
                "fp8_or_int8_dynamic_block_scales": kv_dynamic},
            "tokenizer": m.tokenizer.as_ref().map(|t| t.vocab_size()),
        });
        outln!("{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    outln!("source                  {}", m.source)?;
    outln!("parameters              {} ({:.1} M)", params, params as f64 / 1e6)?;
    outln!("layers                  {}", c.num_hidden_layers)?;
    outln!("hidden / intermediate   {} / {}", c.hidden_size, c.intermediate_size)?;
    outln!("heads / kv heads / dim  {} / {} / {}", c.num_attention_heads, c.num_key_value_heads, c.head_dim)?;
    outln!("vocab                   {}", c.vocab_size)?;
    outln!("context                 {}", c.max_position_embeddings)?;
    outln!("rope theta / scaling    {} / {}", c.rope_theta, c.rope_scaling_name())?;
    outln!("rms_norm_eps            {}", c.rms_norm_eps)?;
    outln!("tied embeddings         {}", c.tie_word_embeddings)?;
    let d: Vec<String> =
        dtypes.iter().map(|(k, v)| format!("{v} × {k} ({:.2} M params)", dtype_params[k] as f64 / 1e6)).collect();
    outln!("tensor dtypes           {}", d.join(", "))?;
    outln!(
        "memory                  {:.1} MB f32 (as loaded), {:.1} MB f16",
        params as f64 * 4.0 / 1e6,
        params as f64 * 2.0 / 1e6
    )?;
    outln!("kv cache (f16)          {} bytes per token", kv_per_token * 2)?;
    outln!(
        "kv cache (fp8 / int8)   {kv_per_token} bytes per token (per-head static scales; {kv_dynamic:.0} with dynamic per-block scales)"
    )?;
    match &m.tokenizer {
        Some(t) => outln!("tokenizer               {} tokens", t.vocab_size())?,
        None => outln!("tokenizer               none")?,
    }
    Ok(())
}

/// `info --engine-dir`: the manifest's view of an engine dir (nothing else is read).
fn engine_dir(dir: &Path, json: bool) -> Result<()> {
    let m = Manifest::load(dir)?;
    let c = &m.model_config;
    let (kv_name, kv_per_token) = m.kv_format();
    let q = m.extra.get("quantization");
    let group = m.precision.group_size();
    let padded = q.and_then(|q| q.get("padded_inputs")).cloned().unwrap_or(serde_json::Value::Null);
    let on_disk: u64 = m.files.iter().map(|f| f.bytes).sum();
    // The cache the build limits allow: max_batch_size sequences of max_seq_len tokens.
    let full_kv = kv_per_token * (m.build.max_batch_size * m.build.max_seq_len) as f64;
    if json {
        let v = serde_json::json!({
            "engine_dir": dir,
            "name": m.name,
            "source": m.source,
            "precision": m.precision_name(),
            "method": m.method,
            "group_size": group,
            "padded_inputs": padded,
            "parameters": c.param_count(),
            "config": c,
            "onnx": {"file": m.onnx.file, "opset": m.onnx.opset, "dtype": m.onnx.dtype, "attention": m.onnx.attention},
            "build": m.build,
            "kv_cache": kv_name,
            "kv_cache_bytes_per_token": kv_per_token,
            "kv_cache_bytes_at_build_limits": full_kv,
            "bytes_on_disk": on_disk,
            "files": m.files.iter().map(|f| serde_json::json!({"name": f.name, "bytes": f.bytes})).collect::<Vec<_>>(),
        });
        outln!("{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    outln!("engine dir              {} ({:?})", dir.display(), m.name)?;
    outln!("source                  {} ({})", m.source.spec, m.source.kind)?;
    let how = match group {
        _ if !m.precision.is_quantized() => String::new(),
        Some(g) => format!(" ({:?}, group {g})", m.method),
        None => format!(" ({:?})", m.method),
    };
    outln!("precision               {}{how}", m.precision_name())?;
    if padded.as_array().is_some_and(|a| !a.is_empty()) {
        outln!("padded inputs           {padded} (zero-padded to whole groups)")?;
    }
    outln!("parameters              {} ({:.1} M)", c.param_count(), c.param_count() as f64 / 1e6)?;
    outln!(
        "model                   {} layers, hidden {}, intermediate {}, heads {} / kv {} / dim {}, vocab {}",
        c.num_hidden_layers,
        c.hidden_size,
        c.intermediate_size,
        c.num_attention_heads,
        c.num_key_value_heads,
        c.head_dim,
        c.vocab_size
    )?;
    outln!(
        "onnx                    {} (opset {}, {}, attention {:?})",
        m.onnx.file,
        m.onnx.opset,
        m.onnx.dtype,
        m.onnx.attention
    )?;
    outln!(
        "build limits            batch {}, input {}, sequence {} tokens",
        m.build.max_batch_size,
        m.build.max_input_len,
        m.build.max_seq_len
    )?;
    outln!("kv cache                {kv_name}: {kv_per_token:.0} bytes per token")?;
    outln!(
        "kv cache at the limits  {:.1} MB ({} sequences × {} tokens)",
        full_kv / 1e6,
        m.build.max_batch_size,
        m.build.max_seq_len
    )?;
    outln!("on disk                 {:.1} MB in {} files", on_disk as f64 / 1e6, m.files.len())?;
    for f in &m.files {
        outln!("  {:<22}{:>12} bytes", f.name, f.bytes)?;
    }
    Ok(())
}
