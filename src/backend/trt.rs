//! TensorRT backend: runs an engine directory's `model.engine` (built by `trtforge build`) on the
//! GPU through [`crate::trt::runner`]. The GPU is checked against the engine's targets before the
//! library is loaded, so an unsupported GPU gets one clear message.
//!
//! KV cache: per slot, on the host, in the engine's dtype — `(kv_heads, len, head_dim)` for the
//! portable form (past/present grow), `(kv_heads, capacity, head_dim)` for the tensorrt form (the
//! engine updates the fixed-size cache in place). Each chunk runs as its own batch-1 enqueue:
//! prefill chunks with the prefill profile, single tokens with the decode profile.
use super::{check_chunks, Backend, Logits, LogitsOut, SeqChunk};
use crate::config::AttentionForm;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::model::LlamaConfig;
use crate::trt::build::TrtManifest;
use crate::trt::runner::{HostTensor, TrtSession};
use std::path::Path;

/// Index of each profile in the engine (the order `trtforge build` adds them).
const PREFILL_PROFILE: i32 = 0;
const DECODE_PROFILE: i32 = 1;

pub struct TrtBackend {
    session: TrtSession,
    cfg: LlamaConfig,
    form: AttentionForm,
    max_batch: usize,
    max_seq: usize,
    /// Longest chunk the prefill profile takes, and the most cached tokens it allows with it.
    max_input: usize,
    prefill_past_max: usize,
    /// Cache capacity of the tensorrt form (the converter's max_seq_len).
    capacity: usize,
    /// Per slot: (key, value) bytes per layer.
    kv: Vec<Vec<(Vec<u8>, Vec<u8>)>>,
    lens: Vec<usize>,
}

impl TrtBackend {
    pub fn open(dir: &Path, max_batch: usize, max_seq: usize) -> Result<Self> {
        let m = Manifest::load(dir)?;
        m.check_files(dir)?;
        let sec = TrtManifest::from_manifest(&m)
            .ok_or_else(|| Error::Unsupported(format!("{} has no model.engine: run `trtforge build --engine-dir {}`", dir.display(), dir.display())))?
            .map_err(|e| Error::format(dir, format!("tensorrt section: {e}")))?;
        let b = &m.build;
        if max_seq > b.max_seq_len {
            return Err(Error::Invalid(format!("{max_seq} tokens requested, but {} was built for max_seq_len {}", dir.display(), b.max_seq_len)));
        }
        let session = TrtSession::open(dir, &m, None)?;
        let elem: usize = match m.onnx.dtype.as_str() {
            "float32" => 4,
            "float16" => 2,
            d => return Err(Error::Unsupported(format!("KV cache dtype {d}"))),
        };
        let cfg = m.model_config.clone();
        let capacity = m.build.max_seq_len;
        let form = sec.attention;
        let per = cfg.num_key_value_heads * capacity * cfg.head_dim * elem;
        let kv = (0..max_batch)
            .map(|_| {
                (0..cfg.num_hidden_layers)
                    .map(|_| match form {
                        AttentionForm::Portable => (Vec::new(), Vec::new()),
                        AttentionForm::Tensorrt => (vec![0u8; per], vec![0u8; per]),
                    })
                    .collect()
            })
            .collect();
        Ok(TrtBackend {
            session,
            cfg,
            form,
            max_batch,
            max_seq,
            max_input: b.max_input_len,
            prefill_past_max: b.max_seq_len - b.max_input_len,
            capacity,
            kv,
            lens: vec![0; max_batch],
        })
    }

    /// Runs `tokens` for one slot at its current length; returns logits (n, vocab).
    fn run_chunk(&mut self, slot: usize, tokens: &[u32]) -> Result<Vec<f32>> {
        let (n, past) = (tokens.len(), self.lens[slot]);
        let c = &self.cfg;
        let (kvh, hd) = (c.num_key_value_heads as i64, c.head_dim as i64);
        let i64s = |v: &[i64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let ids: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
        let pos: Vec<i64> = (past..past + n).map(|p| p as i64).collect();
        let t = |name: &str, dims: Vec<i64>, bytes: Vec<u8>| HostTensor { name: name.into(), dims, bytes };
        let mut inputs = vec![t("input_ids", vec![1, n as i64], i64s(&ids)), t("position_ids", vec![1, n as i64], i64s(&pos))];
        match self.form {
            AttentionForm::Portable => inputs.push(t("attention_mask", vec![1, (past + n) as i64], i64s(&vec![1; past + n]))),
            AttentionForm::Tensorrt => {
                inputs.push(t("past_seq_lens", vec![1], i64s(&[past as i64])));
            }
        }
        let cache_len = match self.form {
            AttentionForm::Portable => past,
            AttentionForm::Tensorrt => self.capacity,
        } as i64;
        for (l, (k, v)) in self.kv[slot].iter().enumerate() {
            inputs.push(t(&format!("past_key_values.{l}.key"), vec![1, kvh, cache_len, hd], k.clone()));
            inputs.push(t(&format!("past_key_values.{l}.value"), vec![1, kvh, cache_len, hd], v.clone()));
        }
        let profile = if n == 1 { DECODE_PROFILE } else { PREFILL_PROFILE };
        let outs = self.session.run(profile, &inputs)?;
        let mut logits = Vec::new();
        for o in outs {
            if o.name == "logits" {
                logits = o.bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            } else if let Some(rest) = o.name.strip_prefix("present.") {
                let (l, kind) = rest.split_once('.').ok_or_else(|| Error::Invalid(format!("unexpected output {}", o.name)))?;
                let l: usize = l.parse().map_err(|_| Error::Invalid(format!("unexpected output {}", o.name)))?;
                let e = &mut self.kv[slot][l];
                if kind == "key" {
                    e.0 = o.bytes;
                } else {
                    e.1 = o.bytes;
                }
            }
        }
        self.lens[slot] += n;
        Ok(logits)
    }
}

impl Backend for TrtBackend {
    fn name(&self) -> &'static str {
        "trt"
    }
    fn config(&self) -> &LlamaConfig {
        &self.cfg
    }
    fn max_batch(&self) -> usize {
        self.max_batch
    }
    fn max_seq(&self) -> usize {
        self.max_seq
    }
    fn seq_len(&self, slot: usize) -> usize {
        self.lens.get(slot).copied().unwrap_or(0)
    }
    fn reset(&mut self, slot: usize) {
        if slot < self.max_batch {
            self.lens[slot] = 0;
            if self.form == AttentionForm::Portable {
                self.kv[slot].iter_mut().for_each(|l| *l = Default::default());
            }
        }
    }

    fn forward(&mut self, chunks: &[SeqChunk], want: Logits) -> Result<LogitsOut> {
        check_chunks(self, chunks)?;
        let vocab = self.cfg.vocab_size;
        let mut data = Vec::new();
        for c in chunks {
            // Split a chunk into pieces the profiles accept: prefill pieces of at most max_input
            // tokens while the past allows, single tokens (decode profile) after that.
            let mut rows = Vec::new();
            let mut done = 0;
            while done < c.tokens.len() {
                let past = self.lens[c.slot];
                let left = c.tokens.len() - done;
                let take = if left > 1 && past <= self.prefill_past_max {
                    left.min(self.max_input).min(self.prefill_past_max + self.max_input - past).max(1)
                } else {
                    1
                };
                let l = self.run_chunk(c.slot, &c.tokens[done..done + take])?;
                rows.extend_from_slice(&l);
                done += take;
            }
            match want {
                Logits::All => data.extend_from_slice(&rows),
                Logits::Last => data.extend_from_slice(&rows[rows.len() - vocab..]),
            }
        }
        Ok(LogitsOut { vocab, data })
    }
}
