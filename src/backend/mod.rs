//! Execution backends behind one trait. Generation, evaluation and benchmarks only see [`Backend`].
pub mod cpu;
pub mod cuda;
pub mod ort;

use crate::error::Result;
use crate::model::LlamaConfig;

/// New tokens for one sequence slot; positions continue from what the slot's KV cache holds.
#[derive(Debug, Clone, Copy)]
pub struct SeqChunk<'a> {
    pub slot: usize,
    pub tokens: &'a [u32],
}

/// Which logits a forward pass returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Only each chunk's last position (generation).
    Last,
    /// Every new position (perplexity).
    All,
}

/// Logits of one forward pass: `rows × vocab`, rows in chunk order (one per chunk for
/// [`Logits::Last`], one per token for [`Logits::All`]).
#[derive(Debug, Clone)]
pub struct LogitsOut {
    pub vocab: usize,
    pub data: Vec<f32>, // (rows, vocab)
}

impl LogitsOut {
    pub fn rows(&self) -> usize {
        self.data.len() / self.vocab.max(1)
    }
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.vocab..(r + 1) * self.vocab]
    }
}

/// A Llama executor with a KV cache of `max_batch` slots × `max_seq` positions, allocated up front.
pub trait Backend {
    /// Short name for reports: "cpu", "ort", "cuda", "trt".
    fn name(&self) -> &'static str;
    fn config(&self) -> &LlamaConfig;
    fn max_batch(&self) -> usize;
    fn max_seq(&self) -> usize;
    /// Tokens already in a slot's cache.
    fn seq_len(&self, slot: usize) -> usize;
    /// Runs the chunks (at most one per slot), appends them to their caches and returns logits.
    fn forward(&mut self, chunks: &[SeqChunk], want: Logits) -> Result<LogitsOut>;
    /// Empties a slot's cache.
    fn reset(&mut self, slot: usize);
    /// Like `forward(chunks, Logits::Last)` followed by an argmax of each row (first index on
    /// ties). Backends that can choose on the device override it so logits stay there.
    fn forward_greedy(&mut self, chunks: &[SeqChunk]) -> Result<Vec<u32>> {
        let l = self.forward(chunks, Logits::Last)?;
        Ok((0..l.rows()).map(|r| crate::generate::argmax(l.row(r))).collect())
    }
}

/// Checks a batch against the backend's limits before any work is done.
pub fn check_chunks(b: &dyn Backend, chunks: &[SeqChunk]) -> Result<()> {
    use crate::error::Error;
    let mut seen = vec![false; b.max_batch()];
    for c in chunks {
        if c.slot >= b.max_batch() {
            return Err(Error::Invalid(format!(
                "sequence slot {} is beyond the batch capacity {}",
                c.slot,
                b.max_batch()
            )));
        }
        if std::mem::replace(&mut seen[c.slot], true) {
            return Err(Error::Invalid(format!("slot {} appears twice in one batch", c.slot)));
        }
        if c.tokens.is_empty() {
            return Err(Error::Invalid("empty token chunk".into()));
        }
        let end = b.seq_len(c.slot) + c.tokens.len();
        if end > b.max_seq() {
            return Err(Error::Invalid(format!(
                "sequence of {end} tokens exceeds the KV cache capacity of {} (model context {})",
                b.max_seq(),
                b.config().max_position_embeddings
            )));
        }
        let vocab = b.config().vocab_size as u32;
        if let Some(t) = c.tokens.iter().find(|&&t| t >= vocab) {
            return Err(Error::Invalid(format!("token id {t} is outside the vocabulary (size {vocab})")));
        }
    }
    Ok(())
}
