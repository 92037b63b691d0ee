//! Llama model configuration: HF `config.json`, GGUF metadata (see `gguf.rs`) and built-in presets.
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// RoPE frequency scaling (HF `rope_scaling`, GGUF `llama.rope.scaling.*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rope_type", rename_all = "lowercase")]
pub enum RopeScaling {
    /// Llama 3.1's frequency-dependent scaling.
    Llama3(Llama3RopeScaling),
    /// Position interpolation: every frequency divided by `factor`.
    Linear { factor: f32 },
    /// Dynamic NTK: the base grows once a sequence passes `max_position_embeddings`. trtforge
    /// never runs past `max_position_embeddings`, where it equals no scaling (as in HF).
    Dynamic { factor: f32 },
    /// One divisor per frequency (head_dim / 2), as Llama 3.1+ GGUF files store their scaling
    /// (`rope_freqs.weight`).
    Divisors { divisors: Vec<f32> },
}

/// Llama 3.1's RoPE scaling parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Llama3RopeScaling {
    pub factor: f32,
    pub low_freq_factor: f32,
    pub high_freq_factor: f32,
    pub original_max_position_embeddings: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rope_theta: f32,
    pub rope_scaling: Option<RopeScaling>,
    pub rms_norm_eps: f32,
    pub tie_word_embeddings: bool,
    pub max_position_embeddings: usize,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
}

/// Upper bounds that keep a lying header from asking for absurd allocations.
const MAX_DIM: usize = 1 << 20;
const MAX_LAYERS: usize = 4096;

impl LlamaConfig {
    /// Number of parameters (embeddings counted once when tied).
    pub fn param_count(&self) -> usize {
        let h = self.hidden_size;
        let q = self.num_attention_heads * self.head_dim;
        let kv = self.num_key_value_heads * self.head_dim;
        let per_layer = 2 * h + h * q + 2 * h * kv + q * h + 3 * h * self.intermediate_size;
        let head = if self.tie_word_embeddings { 0 } else { self.vocab_size * h };
        self.vocab_size * h + self.num_hidden_layers * per_layer + h + head
    }

    pub fn q_dim(&self) -> usize {
        self.num_attention_heads * self.head_dim
    }
    pub fn kv_dim(&self) -> usize {
        self.num_key_value_heads * self.head_dim
    }

    /// Checks the invariants every consumer relies on.
    pub fn validate(&self) -> Result<()> {
        let err = |m: String| Err(Error::Config(m));
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("head_dim", self.head_dim),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if v == 0 || v > MAX_DIM * 4 {
                return err(format!("{name} = {v} is out of range (1..={})", MAX_DIM * 4));
            }
        }
        if self.num_hidden_layers == 0 || self.num_hidden_layers > MAX_LAYERS {
            return err(format!("num_hidden_layers = {} is out of range", self.num_hidden_layers));
        }
        if self.num_attention_heads % self.num_key_value_heads != 0 {
            return err(format!(
                "num_attention_heads ({}) must be a multiple of num_key_value_heads ({})",
                self.num_attention_heads, self.num_key_value_heads
            ));
        }
        if self.head_dim % 2 != 0 {
            return err(format!("head_dim = {} must be even for RoPE", self.head_dim));
        }
        if !(self.rms_norm_eps > 0.0 && self.rms_norm_eps < 1.0) {
            return err(format!("rms_norm_eps = {} is out of range", self.rms_norm_eps));
        }
        if let Some(RopeScaling::Divisors { divisors }) = &self.rope_scaling {
            if divisors.len() != self.head_dim / 2 {
                return err(format!(
                    "{} RoPE divisors for head_dim {} (need head_dim / 2)",
                    divisors.len(),
                    self.head_dim
                ));
            }
        }
        if !(self.rope_theta > 0.0 && self.rope_theta.is_finite()) {
            return err(format!("rope_theta = {} is out of range", self.rope_theta));
        }
        Ok(())
    }

    /// Parses an HF `config.json` for `LlamaForCausalLM`.
    pub fn from_hf_json(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_hf_json_str(&text).map_err(|e| match e {
            Error::Config(m) => Error::format(path, m),
            other => other,
        })
    }

    pub fn from_hf_json_str(text: &str) -> Result<Self> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::Config(format!("invalid JSON: {e}")))?;
        let obj = v.as_object().ok_or_else(|| Error::Config("config.json is not an object".into()))?;
        if let Some(archs) = obj.get("architectures").and_then(|a| a.as_array()) {
            let ok = archs.iter().any(|a| a.as_str() == Some("LlamaForCausalLM"));
            if !ok {
                let names: Vec<String> =
                    archs.iter().map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_string)).collect();
                return Err(Error::Unsupported(format!(
                    "architectures [{}]: only LlamaForCausalLM is supported",
                    names.join(", ")
                )));
            }
        }
        if let Some(mt) = obj.get("model_type").and_then(|m| m.as_str()) {
            if mt != "llama" {
                return Err(Error::Unsupported(format!("model_type {mt:?}: only \"llama\" is supported")));
            }
        }
        // Fields that change the math and that we do not implement must not be silently ignored.
        for (key, benign) in [("attention_bias", false), ("mlp_bias", false)] {
            if let Some(b) = obj.get(key).and_then(|b| b.as_bool()) {
                if b != benign {
                    return Err(Error::Unsupported(format!("{key} = true is not supported")));
                }
            }
        }
        if let Some(act) = obj.get("hidden_act").and_then(|a| a.as_str()) {
            if act != "silu" {
                return Err(Error::Unsupported(format!("hidden_act {act:?}: only \"silu\" is supported")));
            }
        }
        let usize_of = |key: &str| -> Result<Option<usize>> {
            match obj.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(x) => x
                    .as_u64()
                    .map(|n| Some(n as usize))
                    .ok_or_else(|| Error::Config(format!("{key} must be a non-negative integer, found {x}"))),
            }
        };
        let f32_of = |key: &str| -> Result<Option<f32>> {
            match obj.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(x) => x
                    .as_f64()
                    .map(|n| Some(n as f32))
                    .ok_or_else(|| Error::Config(format!("{key} must be a number, found {x}"))),
            }
        };
        let need = |key: &str| -> Result<usize> {
            usize_of(key)?.ok_or_else(|| Error::Config(format!("missing required field {key:?}")))
        };
        let hidden_size = need("hidden_size")?;
        let num_attention_heads = need("num_attention_heads")?;
        let head_dim = match usize_of("head_dim")? {
            Some(h) => h,
            None if num_attention_heads > 0 => hidden_size / num_attention_heads,
            None => 0,
        };
        let rope_scaling = match obj.get("rope_scaling") {
            None | Some(serde_json::Value::Null) => None,
            Some(rs) => parse_rope_scaling(rs)?,
        };
        refuse_unsupported_fields(obj)?;
        let token_id = |key: &str| -> Option<u32> {
            match obj.get(key) {
                Some(serde_json::Value::Number(n)) => n.as_u64().map(|x| x as u32),
                Some(serde_json::Value::Array(a)) => a.first().and_then(|x| x.as_u64()).map(|x| x as u32),
                _ => None,
            }
        };
        let cfg = LlamaConfig {
            vocab_size: need("vocab_size")?,
            hidden_size,
            intermediate_size: need("intermediate_size")?,
            num_hidden_layers: need("num_hidden_layers")?,
            num_attention_heads,
            num_key_value_heads: usize_of("num_key_value_heads")?.unwrap_or(num_attention_heads),
            head_dim,
            rope_theta: f32_of("rope_theta")?.unwrap_or(10000.0),
            rope_scaling,
            rms_norm_eps: f32_of("rms_norm_eps")?.unwrap_or(1e-6),
            tie_word_embeddings: obj.get("tie_word_embeddings").and_then(|b| b.as_bool()).unwrap_or(false),
            max_position_embeddings: usize_of("max_position_embeddings")?.unwrap_or(2048),
            bos_token_id: token_id("bos_token_id"),
            eos_token_id: token_id("eos_token_id"),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Built-in shapes. Weights for these come from `preset:NAME` (seeded random) unless a checkpoint is given.
    pub fn preset(name: &str) -> Result<Self> {
        let cfg = match name {
            "tinyllama-1.1b" => LlamaConfig {
                vocab_size: 32000,
                hidden_size: 2048,
                intermediate_size: 5632,
                num_hidden_layers: 22,
                num_attention_heads: 32,
                num_key_value_heads: 4,
                head_dim: 64,
                rope_theta: 10000.0,
                rope_scaling: None,
                rms_norm_eps: 1e-5,
                tie_word_embeddings: false,
                max_position_embeddings: 2048,
                bos_token_id: Some(1),
                eos_token_id: Some(2),
            },
            "smollm2-135m" => LlamaConfig {
                vocab_size: 49152,
                hidden_size: 576,
                intermediate_size: 1536,
                num_hidden_layers: 30,
                num_attention_heads: 9,
                num_key_value_heads: 3,
                head_dim: 64,
                rope_theta: 100000.0,
                rope_scaling: None,
                rms_norm_eps: 1e-5,
                tie_word_embeddings: true,
                max_position_embeddings: 8192,
                bos_token_id: Some(1),
                eos_token_id: Some(2),
            },
            // Small enough for unit tests, large enough to exercise GQA and multiple layers.
            "tiny" => LlamaConfig {
                vocab_size: 256,
                hidden_size: 64,
                intermediate_size: 128,
                num_hidden_layers: 2,
                num_attention_heads: 4,
                num_key_value_heads: 2,
                head_dim: 16,
                rope_theta: 10000.0,
                rope_scaling: None,
                rms_norm_eps: 1e-5,
                tie_word_embeddings: false,
                max_position_embeddings: 256,
                bos_token_id: Some(1),
                eos_token_id: Some(2),
            },
            other => {
                return Err(Error::Invalid(format!("unknown preset {other:?}; available: {}", PRESETS.join(", "))))
            }
        };
        Ok(cfg)
    }

    /// RoPE inverse frequencies, one per pair of the head dimension, Llama 3 scaling applied.
    pub fn rope_inv_freq(&self) -> Vec<f32> {
        let half = self.head_dim / 2;
        let mut inv: Vec<f32> = (0..half)
            .map(|i| 1.0 / (self.rope_theta as f64).powf(2.0 * i as f64 / self.head_dim as f64) as f32)
            .collect();
        match &self.rope_scaling {
            None | Some(RopeScaling::Dynamic { .. }) => {}
            Some(RopeScaling::Linear { factor }) => inv.iter_mut().for_each(|f| *f /= factor),
            Some(RopeScaling::Llama3(s)) => llama3_scaling(&mut inv, s),
            Some(RopeScaling::Divisors { divisors }) => inv.iter_mut().zip(divisors).for_each(|(f, d)| *f /= d),
        }
        inv
    }

    /// A short description of the RoPE scaling, for `info`.
    pub fn rope_scaling_name(&self) -> String {
        match &self.rope_scaling {
            None => "none".into(),
            Some(RopeScaling::Llama3(s)) => format!("llama3 ×{}", s.factor),
            Some(RopeScaling::Linear { factor }) => format!("linear ×{factor}"),
            Some(RopeScaling::Dynamic { factor }) => format!("dynamic ×{factor}"),
            Some(RopeScaling::Divisors { divisors }) => {
                format!(
                    "per-frequency divisors {:.2}..{:.2}",
                    divisors.first().unwrap_or(&1.0),
                    divisors.last().unwrap_or(&1.0)
                )
            }
        }
    }
}

/// Llama 3.1: low frequencies divided by `factor`, high ones kept, a smooth blend between.
fn llama3_scaling(inv: &mut [f32], s: &Llama3RopeScaling) {
    let old = s.original_max_position_embeddings as f32;
    let low_wavelen = old / s.low_freq_factor;
    let high_wavelen = old / s.high_freq_factor;
    for f in inv.iter_mut() {
        let wavelen = 2.0 * std::f32::consts::PI / *f;
        if wavelen > low_wavelen {
            *f /= s.factor;
        } else if wavelen >= high_wavelen {
            let smooth = (old / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
            *f = (1.0 - smooth) * *f / s.factor + smooth * *f;
        }
    }
}

/// HF `rope_scaling` (`rope_type`, or the older `type`): none/default, llama3, linear, dynamic.
fn parse_rope_scaling(rs: &serde_json::Value) -> Result<Option<RopeScaling>> {
    let ty = rs.get("rope_type").or_else(|| rs.get("type")).and_then(|t| t.as_str()).unwrap_or("<missing>");
    let f = |k: &str| -> Result<f64> {
        rs.get(k)
            .and_then(|x| x.as_f64())
            .ok_or_else(|| Error::Config(format!("rope_scaling ({ty}) needs a numeric {k:?}")))
    };
    let positive = |k: &str| -> Result<f32> {
        let v = f(k)?;
        if v > 0.0 && v.is_finite() {
            Ok(v as f32)
        } else {
            Err(Error::Config(format!("rope_scaling.{k} = {v} must be a positive number")))
        }
    };
    Ok(match ty {
        "default" => None,
        "llama3" => Some(RopeScaling::Llama3(Llama3RopeScaling {
            factor: positive("factor")?,
            low_freq_factor: positive("low_freq_factor")?,
            high_freq_factor: positive("high_freq_factor")?,
            original_max_position_embeddings: f("original_max_position_embeddings")? as usize,
        })),
        "linear" => Some(RopeScaling::Linear { factor: positive("factor")? }),
        "dynamic" => Some(RopeScaling::Dynamic { factor: positive("factor")? }),
        other => {
            return Err(Error::Unsupported(format!(
                "rope_scaling.rope_type {other:?}: supported are \"default\", \"llama3\", \"linear\" and \"dynamic\""
            )))
        }
    })
}

/// config.json fields that change the computation in ways trtforge does not implement: refused
/// by name rather than silently ignored.
fn refuse_unsupported_fields(obj: &serde_json::Map<String, serde_json::Value>) -> Result<()> {
    let set = |k: &str| obj.get(k).is_some_and(|v| !v.is_null() && v != &serde_json::Value::Bool(false));
    for key in [
        "quantization_config",
        "sliding_window",
        "num_local_experts",
        "num_experts",
        "attn_logit_softcapping",
        "final_logit_softcapping",
        "no_rope_layers",
    ] {
        if set(key) {
            return Err(Error::Unsupported(format!(
                "config.json field {key:?} = {}: not supported by trtforge's Llama",
                obj[key]
            )));
        }
    }
    Ok(())
}

pub const PRESETS: &[&str] = &["tinyllama-1.1b", "smollm2-135m", "tiny"];
