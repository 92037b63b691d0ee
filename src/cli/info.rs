//! `trtforge info`: model config, parameter count, tensor dtypes and memory.
use super::loading;
use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct InfoArgs {
    /// A GGUF file, an HF checkpoint directory, or `preset:NAME[:SEED]`.
    #[arg(long)]
    pub model: String,
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: InfoArgs) -> Result<()> {
    // The config, tensor table and tokenizer only: no weights are read or made.
    let m = crate::model::load::summarize(&a.model).map_err(|e| loading(&a.model, e))?;
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
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("source                  {}", m.source);
    println!("parameters              {} ({:.1} M)", params, params as f64 / 1e6);
    println!("layers                  {}", c.num_hidden_layers);
    println!("hidden / intermediate   {} / {}", c.hidden_size, c.intermediate_size);
    println!("heads / kv heads / dim  {} / {} / {}", c.num_attention_heads, c.num_key_value_heads, c.head_dim);
    println!("vocab                   {}", c.vocab_size);
    println!("context                 {}", c.max_position_embeddings);
    println!("rope theta / scaling    {} / {}", c.rope_theta, c.rope_scaling_name());
    println!("rms_norm_eps            {}", c.rms_norm_eps);
    println!("tied embeddings         {}", c.tie_word_embeddings);
    let d: Vec<String> =
        dtypes.iter().map(|(k, v)| format!("{v} × {k} ({:.2} M params)", dtype_params[k] as f64 / 1e6)).collect();
    println!("tensor dtypes           {}", d.join(", "));
    println!(
        "memory                  {:.1} MB f32 (as loaded), {:.1} MB f16",
        params as f64 * 4.0 / 1e6,
        params as f64 * 2.0 / 1e6
    );
    println!("kv cache (f16)          {} bytes per token", kv_per_token * 2);
    println!(
        "kv cache (fp8 / int8)   {kv_per_token} bytes per token (per-head static scales; {kv_dynamic:.0} with dynamic per-block scales)"
    );
    match &m.tokenizer {
        Some(t) => println!("tokenizer               {} tokens", t.vocab_size()),
        None => println!("tokenizer               none"),
    }
    Ok(())
}
