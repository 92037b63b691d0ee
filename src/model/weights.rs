//! The in-memory model: one set of f32 weights, whatever checkpoint format it came from.
//!
//! Every loader goes through [`TensorSource`] and the single name table [`tensor_name`], so the
//! checkpoint's naming scheme appears only here.
use super::config::LlamaConfig;
use super::tensor::Tensor;
use crate::error::{Error, Result};
use crate::util::SplitMix64;

/// Names a parameter of the Llama graph independently of any checkpoint format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Param {
    Embed,
    AttnNorm(usize),
    Wq(usize),
    Wk(usize),
    Wv(usize),
    Wo(usize),
    FfnNorm(usize),
    WGate(usize),
    WUp(usize),
    WDown(usize),
    FinalNorm,
    /// The LM head; resolves to `Embed` when embeddings are tied.
    LmHead,
}

/// Checkpoint naming schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameScheme {
    /// HF transformers `LlamaForCausalLM` (safetensors).
    Hf,
    /// llama.cpp GGUF.
    Gguf,
}

/// The one mapping table from graph parameters to checkpoint tensor names.
pub fn tensor_name(p: Param, scheme: NameScheme) -> String {
    use NameScheme::*;
    use Param::*;
    match (p, scheme) {
        (Embed, Hf) => "model.embed_tokens.weight".into(),
        (Embed, Gguf) => "token_embd.weight".into(),
        (FinalNorm, Hf) => "model.norm.weight".into(),
        (FinalNorm, Gguf) => "output_norm.weight".into(),
        (LmHead, Hf) => "lm_head.weight".into(),
        (LmHead, Gguf) => "output.weight".into(),
        (AttnNorm(l), Hf) => format!("model.layers.{l}.input_layernorm.weight"),
        (AttnNorm(l), Gguf) => format!("blk.{l}.attn_norm.weight"),
        (Wq(l), Hf) => format!("model.layers.{l}.self_attn.q_proj.weight"),
        (Wq(l), Gguf) => format!("blk.{l}.attn_q.weight"),
        (Wk(l), Hf) => format!("model.layers.{l}.self_attn.k_proj.weight"),
        (Wk(l), Gguf) => format!("blk.{l}.attn_k.weight"),
        (Wv(l), Hf) => format!("model.layers.{l}.self_attn.v_proj.weight"),
        (Wv(l), Gguf) => format!("blk.{l}.attn_v.weight"),
        (Wo(l), Hf) => format!("model.layers.{l}.self_attn.o_proj.weight"),
        (Wo(l), Gguf) => format!("blk.{l}.attn_output.weight"),
        (FfnNorm(l), Hf) => format!("model.layers.{l}.post_attention_layernorm.weight"),
        (FfnNorm(l), Gguf) => format!("blk.{l}.ffn_norm.weight"),
        (WGate(l), Hf) => format!("model.layers.{l}.mlp.gate_proj.weight"),
        (WGate(l), Gguf) => format!("blk.{l}.ffn_gate.weight"),
        (WUp(l), Hf) => format!("model.layers.{l}.mlp.up_proj.weight"),
        (WUp(l), Gguf) => format!("blk.{l}.ffn_up.weight"),
        (WDown(l), Hf) => format!("model.layers.{l}.mlp.down_proj.weight"),
        (WDown(l), Gguf) => format!("blk.{l}.ffn_down.weight"),
    }
}

/// Expected row-major shape of a parameter: `[out, in]` for linear weights, `[n]` for norms.
pub fn param_shape(p: Param, c: &LlamaConfig) -> Vec<usize> {
    use Param::*;
    let h = c.hidden_size;
    match p {
        Embed | LmHead => vec![c.vocab_size, h],
        AttnNorm(_) | FfnNorm(_) | FinalNorm => vec![h],
        Wq(_) => vec![c.q_dim(), h],
        Wk(_) | Wv(_) => vec![c.kv_dim(), h],
        Wo(_) => vec![h, c.q_dim()],
        WGate(_) | WUp(_) => vec![c.intermediate_size, h],
        WDown(_) => vec![h, c.intermediate_size],
    }
}

/// A checkpoint that can hand out tensors by name, converted to f32 in row-major `[out, in]` order.
pub trait TensorSource {
    /// Which names to ask for.
    fn scheme(&self) -> NameScheme;
    /// Returns `Ok(None)` when the tensor does not exist; an error when it exists but is unusable.
    /// `expected` is the row-major shape the graph needs; a mismatch is an error naming the tensor.
    fn tensor(&self, name: &str, expected: &[usize]) -> Result<Option<Tensor>>;
    /// For error messages.
    fn describe(&self) -> String;
    /// Every tensor name the checkpoint holds.
    fn names(&self) -> Vec<String>;
}

/// The layer a checkpoint tensor name belongs to (`blk.N.` / `model.layers.N.`), if any.
fn layer_of(name: &str, scheme: NameScheme) -> Option<usize> {
    let rest = match scheme {
        NameScheme::Gguf => name.strip_prefix("blk.")?,
        NameScheme::Hf => name.strip_prefix("model.layers.")?,
    };
    rest.split_once('.')?.0.parse().ok()
}

/// Tensors of a checkpoint that the Llama graph of `config` does not read (HF warns of them as "weights
/// not used"): e.g. q/k/v biases of a checkpoint whose config says `attention_bias: false`, or a stored
/// head when the embeddings are tied. Rotary tables and GGUF's `rope_freqs.weight` (read into the config)
/// are not counted. Sorted.
pub fn unused_tensors(config: &LlamaConfig, src: &dyn TensorSource) -> Vec<String> {
    let scheme = src.scheme();
    // GGUF has no tie flag: a stored head is the head (`ModelWeights::load`).
    let with_head = !config.tie_word_embeddings || scheme == NameScheme::Gguf;
    let used: std::collections::HashSet<String> =
        graph_params(config, with_head).into_iter().map(|p| tensor_name(p, scheme)).collect();
    let mut v: Vec<String> = src
        .names()
        .into_iter()
        .filter(|n| !used.contains(n) && !n.ends_with("rotary_emb.inv_freq") && n != "rope_freqs.weight")
        .collect();
    v.sort();
    v
}

/// The optional biases llama.cpp's llama loader reads from a GGUF and adds to the projections
/// (`blk.N.attn_{q,k,v,output}.bias`, `blk.N.ffn_{gate,down,up}.bias`).
fn is_gguf_llama_bias(name: &str) -> bool {
    const BIASES: [&str; 7] = [
        "attn_q.bias",
        "attn_k.bias",
        "attn_v.bias",
        "attn_output.bias",
        "ffn_gate.bias",
        "ffn_down.bias",
        "ffn_up.bias",
    ];
    let layer_and_rest = name.strip_prefix("blk.").and_then(|r| r.split_once('.'));
    layer_and_rest.is_some_and(|(layer, rest)| layer.parse::<usize>().is_ok() && BIASES.contains(&rest))
}

/// Checks a checkpoint's tensor table against its config without reading any weight: every tensor
/// the graph needs is there, no layer beyond the config's (a `block_count` / `num_hidden_layers`
/// lower than the checkpoint's layers would silently run a shorter model, as llama.cpp refuses to),
/// and a GGUF holds no tensor the graph would not read (biases, unknown tensors).
pub fn check_tensor_table(config: &LlamaConfig, src: &dyn TensorSource) -> Result<()> {
    let scheme = src.scheme();
    let names: std::collections::HashSet<String> = src.names().into_iter().collect();
    let bad = |msg: String| Err(Error::Format { path: src.describe().into(), msg });
    if let Some(l) = names.iter().filter_map(|n| layer_of(n, scheme)).max().filter(|&l| l >= config.num_hidden_layers) {
        return bad(format!(
            "the checkpoint holds tensors of layer {l} but its config says {} layers ({}); the config and the weights disagree",
            config.num_hidden_layers,
            if scheme == NameScheme::Gguf { "llama.block_count" } else { "num_hidden_layers" }
        ));
    }
    // Every parameter but the head, which a checkpoint may leave out (tied embeddings).
    if let Some(name) =
        graph_params(config, false).into_iter().map(|p| tensor_name(p, scheme)).find(|n| !names.contains(n))
    {
        return bad(format!("missing tensor {name:?}"));
    }
    // transformers loads an HF checkpoint whatever extra tensors it holds (and warns: `unused_tensors`), but
    // llama.cpp refuses a GGUF holding any tensor its llama graph does not create ("wrong number of
    // tensors"), and the ones it does create beyond ours are biases it adds to the projections. Either way
    // running the file without them would give another model's output.
    if scheme == NameScheme::Gguf {
        let (biases, others): (Vec<String>, Vec<String>) =
            unused_tensors(config, src).into_iter().partition(|n| is_gguf_llama_bias(n));
        let list = |names: &[String]| {
            let shown: Vec<&str> = names.iter().take(6).map(String::as_str).collect();
            format!("{}{}", shown.join(", "), if names.len() > shown.len() { ", ..." } else { "" })
        };
        if !biases.is_empty() {
            return Err(Error::Unsupported(format!(
                "{}: bias tensors are not supported: {} ({} in all; the Llama graph has no biases, and llama.cpp adds \
                 them, so running without them would be wrong)",
                src.describe(),
                list(&biases),
                biases.len()
            )));
        }
        if !others.is_empty() {
            return bad(format!(
                "tensors that a llama model does not have: {} ({} in all; llama.cpp refuses such a file: \"wrong number \
                 of tensors\")",
                list(&others),
                others.len()
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct LayerWeights {
    pub attn_norm: Tensor, // (hidden)
    pub wq: Tensor,        // (n_heads * head_dim, hidden)
    pub wk: Tensor,        // (n_kv_heads * head_dim, hidden)
    pub wv: Tensor,        // (n_kv_heads * head_dim, hidden)
    pub wo: Tensor,        // (hidden, n_heads * head_dim)
    pub ffn_norm: Tensor,  // (hidden)
    pub w_gate: Tensor,    // (intermediate, hidden)
    pub w_up: Tensor,      // (intermediate, hidden)
    pub w_down: Tensor,    // (hidden, intermediate)
}

#[derive(Debug, Clone)]
pub struct ModelWeights {
    pub config: LlamaConfig,
    pub embed: Tensor, // (vocab, hidden)
    pub layers: Vec<LayerWeights>,
    pub final_norm: Tensor,      // (hidden)
    pub lm_head: Option<Tensor>, // (vocab, hidden); None = tied to `embed`
}

impl ModelWeights {
    /// Looks a parameter up; `LmHead` falls back to the embedding when tied.
    pub fn get(&self, p: Param) -> &Tensor {
        use Param::*;
        match p {
            Embed => &self.embed,
            FinalNorm => &self.final_norm,
            LmHead => self.lm_head.as_ref().unwrap_or(&self.embed),
            AttnNorm(l) => &self.layers[l].attn_norm,
            Wq(l) => &self.layers[l].wq,
            Wk(l) => &self.layers[l].wk,
            Wv(l) => &self.layers[l].wv,
            Wo(l) => &self.layers[l].wo,
            FfnNorm(l) => &self.layers[l].ffn_norm,
            WGate(l) => &self.layers[l].w_gate,
            WUp(l) => &self.layers[l].w_up,
            WDown(l) => &self.layers[l].w_down,
        }
    }

    pub fn get_mut(&mut self, p: Param) -> &mut Tensor {
        use Param::*;
        match p {
            Embed => &mut self.embed,
            FinalNorm => &mut self.final_norm,
            LmHead => match self.lm_head.as_mut() {
                Some(t) => t,
                None => &mut self.embed,
            },
            AttnNorm(l) => &mut self.layers[l].attn_norm,
            Wq(l) => &mut self.layers[l].wq,
            Wk(l) => &mut self.layers[l].wk,
            Wv(l) => &mut self.layers[l].wv,
            Wo(l) => &mut self.layers[l].wo,
            FfnNorm(l) => &mut self.layers[l].ffn_norm,
            WGate(l) => &mut self.layers[l].w_gate,
            WUp(l) => &mut self.layers[l].w_up,
            WDown(l) => &mut self.layers[l].w_down,
        }
    }

    /// Builds the model from any checkpoint through the one name table.
    pub fn load(config: LlamaConfig, src: &dyn TensorSource) -> Result<Self> {
        config.validate()?;
        check_tensor_table(&config, src)?;
        let scheme = src.scheme();
        let fetch = |p: Param| -> Result<Tensor> {
            let name = tensor_name(p, scheme);
            src.tensor(&name, &param_shape(p, &config))?
                .ok_or_else(|| Error::Format { path: src.describe().into(), msg: format!("missing tensor {name:?}") })
        };
        let embed = fetch(Param::Embed)?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            layers.push(LayerWeights {
                attn_norm: fetch(Param::AttnNorm(l))?,
                wq: fetch(Param::Wq(l))?,
                wk: fetch(Param::Wk(l))?,
                wv: fetch(Param::Wv(l))?,
                wo: fetch(Param::Wo(l))?,
                ffn_norm: fetch(Param::FfnNorm(l))?,
                w_gate: fetch(Param::WGate(l))?,
                w_up: fetch(Param::WUp(l))?,
                w_down: fetch(Param::WDown(l))?,
            });
        }
        let final_norm = fetch(Param::FinalNorm)?;
        let head_name = tensor_name(Param::LmHead, scheme);
        let mut lm_head = src.tensor(&head_name, &param_shape(Param::LmHead, &config))?;
        let mut config = config;
        match (&lm_head, config.tie_word_embeddings) {
            (None, false) => {
                // GGUF marks tying by omitting `output.weight`; HF says so in config.json.
                if scheme == NameScheme::Gguf {
                    config.tie_word_embeddings = true;
                } else {
                    return Err(Error::Format {
                        path: src.describe().into(),
                        msg: format!("missing tensor {head_name:?} and tie_word_embeddings is false"),
                    });
                }
            }
            // GGUF has no tie flag: a stored head is the head. HF ties the head to the embedding
            // when config.json says so, whatever `lm_head.weight` the checkpoint also holds.
            (Some(_), true) if scheme == NameScheme::Gguf => config.tie_word_embeddings = false,
            (Some(_), true) => lm_head = None,
            _ => {}
        }
        Ok(ModelWeights { config, embed, layers, final_norm, lm_head })
    }

    /// Seeded random weights for speed work on shapes we have no checkpoint for.
    /// Linear weights ~ U(-a, a) with a = 1/sqrt(in), norms = 1, so activations stay O(1).
    pub fn random(config: LlamaConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let mut rng = SplitMix64(seed);
        let mut rand_t = |shape: Vec<usize>| -> Tensor {
            let fan_in = *shape.last().unwrap_or(&1) as f32;
            let a = 1.0 / fan_in.sqrt();
            let n: usize = shape.iter().product();
            let data = (0..n).map(|_| (rng.next_f32() * 2.0 - 1.0) * a).collect();
            Tensor::new(shape, data)
        };
        let ones = |n: usize| Tensor::new(vec![n], vec![1.0; n]);
        let c = &config;
        let embed = rand_t(param_shape(Param::Embed, c));
        let layers = (0..c.num_hidden_layers)
            .map(|l| LayerWeights {
                attn_norm: ones(c.hidden_size),
                wq: rand_t(param_shape(Param::Wq(l), c)),
                wk: rand_t(param_shape(Param::Wk(l), c)),
                wv: rand_t(param_shape(Param::Wv(l), c)),
                wo: rand_t(param_shape(Param::Wo(l), c)),
                ffn_norm: ones(c.hidden_size),
                w_gate: rand_t(param_shape(Param::WGate(l), c)),
                w_up: rand_t(param_shape(Param::WUp(l), c)),
                w_down: rand_t(param_shape(Param::WDown(l), c)),
            })
            .collect();
        let lm_head = if c.tie_word_embeddings { None } else { Some(rand_t(param_shape(Param::LmHead, c))) };
        Ok(ModelWeights { config: config.clone(), embed, layers, final_norm: ones(c.hidden_size), lm_head })
    }

    /// Every parameter, in graph order (LmHead only when untied).
    pub fn params(&self) -> Vec<Param> {
        graph_params(&self.config, self.lm_head.is_some())
    }
}

/// Every parameter of a model with this config, in graph order; `LmHead` only when `with_head`.
pub fn graph_params(c: &LlamaConfig, with_head: bool) -> Vec<Param> {
    let mut v = vec![Param::Embed];
    for l in 0..c.num_hidden_layers {
        v.extend([
            Param::AttnNorm(l),
            Param::Wq(l),
            Param::Wk(l),
            Param::Wv(l),
            Param::Wo(l),
            Param::FfnNorm(l),
            Param::WGate(l),
            Param::WUp(l),
            Param::WDown(l),
        ]);
    }
    v.push(Param::FinalNorm);
    if with_head {
        v.push(Param::LmHead);
    }
    v
}
