//! The Llama graph, written once.
//!
//! [`forward`] is the only place that says what a Llama layer computes. Every consumer walks it by
//! implementing [`LlamaOps`]: the CPU reference executes each op eagerly, the ONNX writer emits a node
//! per op, the CUDA engine launches kernels. A new consumer never re-describes the model.
use super::config::LlamaConfig;
use super::weights::Param;
use crate::error::Result;

/// The primitive operations of a Llama forward pass over a batch of token chunks.
///
/// Shapes are `(T, features)` where `T` is the number of new tokens in the batch (all sequences
/// concatenated, or `batch × seq` for consumers with a padded layout). Positions, the KV cache and the
/// batch layout are the implementor's state.
pub trait LlamaOps {
    type T;
    /// Token embeddings of the inputs. → (T, hidden)
    fn embed(&mut self) -> Result<Self::T>;
    /// `x / sqrt(mean(x²) + eps) * w`, accumulated in f32. (T, d) → (T, d)
    fn rms_norm(&mut self, x: &Self::T, w: Param) -> Result<Self::T>;
    /// `x · Wᵀ` with `W` of shape (out, in). (T, in) → (T, out)
    fn linear(&mut self, x: &Self::T, w: Param) -> Result<Self::T>;
    /// Rotary embedding (HF rotate-half layout) at each token's position. (T, heads·hd) → same
    fn rope(&mut self, x: &Self::T, n_heads: usize) -> Result<Self::T>;
    /// Appends `k`, `v` to layer `layer`'s cache, then causal GQA attention of `q` over the cache.
    /// q (T, n_heads·hd), k/v (T, n_kv_heads·hd) → (T, n_heads·hd)
    fn attention(&mut self, layer: usize, q: &Self::T, k: &Self::T, v: &Self::T) -> Result<Self::T>;
    /// `silu(gate) * up`. (T, inter) ×2 → (T, inter)
    fn swiglu(&mut self, gate: &Self::T, up: &Self::T) -> Result<Self::T>;
    /// Residual add. (T, d) ×2 → (T, d)
    fn add(&mut self, a: &Self::T, b: &Self::T) -> Result<Self::T>;
    /// Keeps only the rows whose logits are wanted (e.g. each sequence's last token when
    /// generating). (T, d) → (T', d)
    fn select_outputs(&mut self, x: &Self::T) -> Result<Self::T>;
}

/// One forward pass of the Llama decoder: embeddings → layers → final norm → LM head logits.
pub fn forward<O: LlamaOps>(cfg: &LlamaConfig, o: &mut O) -> Result<O::T> {
    let mut h = o.embed()?; // (T, hidden)
    for l in 0..cfg.num_hidden_layers {
        let x = o.rms_norm(&h, Param::AttnNorm(l))?;
        let q = o.linear(&x, Param::Wq(l))?; // (T, n_heads·hd)
        let k = o.linear(&x, Param::Wk(l))?; // (T, n_kv·hd)
        let v = o.linear(&x, Param::Wv(l))?; // (T, n_kv·hd)
        let q = o.rope(&q, cfg.num_attention_heads)?;
        let k = o.rope(&k, cfg.num_key_value_heads)?;
        let a = o.attention(l, &q, &k, &v)?; // (T, n_heads·hd)
        let a = o.linear(&a, Param::Wo(l))?; // (T, hidden)
        h = o.add(&h, &a)?;
        let x = o.rms_norm(&h, Param::FfnNorm(l))?;
        let g = o.linear(&x, Param::WGate(l))?; // (T, inter)
        let u = o.linear(&x, Param::WUp(l))?; // (T, inter)
        let m = o.swiglu(&g, &u)?;
        let d = o.linear(&m, Param::WDown(l))?; // (T, hidden)
        h = o.add(&h, &d)?;
    }
    let h = o.select_outputs(&h)?; // (T', hidden)
    let x = o.rms_norm(&h, Param::FinalNorm)?;
    o.linear(&x, Param::LmHead) // (T', vocab)
}
