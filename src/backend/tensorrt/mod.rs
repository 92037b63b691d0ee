//! TensorRT backend: runs an engine directory's `model.engine` (built by `trtforge build`) on the
//! GPU through [`session`] (the TensorRT FFI is `crate::trt`). The GPU is checked against the engine's targets before the
//! library is loaded, so an unsupported GPU gets one clear message.
//!
//! KV cache: per slot, on the host, in the engine's dtype — `(kv_heads, len, head_dim)` for the
//! portable form (past/present grow), `(kv_heads, capacity, head_dim)` for the tensorrt form (the
//! engine writes the new tokens into the fixed-size cache). Chunks are split into pieces the
//! profiles accept (prefill: up to max_input_len new tokens while the past allows; decode: one) and
//! pieces that can share an enqueue are batched: same length in the tensorrt form (each row has its
//! own past length), same length and past in the portable form.
pub mod session;

use super::{check_chunks, Backend, Logits, LogitsOut, SeqChunk};
use crate::engine_dir::config::AttentionForm;
use crate::engine_dir::manifest::{Manifest, TrtManifest};
use crate::error::{Error, Result};
use crate::model::LlamaConfig;
use session::{EngineRunner, HostTensor, TrtSession};
use std::path::Path;

/// Index of each profile in the engine (the order `trtforge build` adds them).
pub const PREFILL_PROFILE: i32 = 0;
pub const DECODE_PROFILE: i32 = 1;

pub struct TrtBackend {
    runner: Box<dyn EngineRunner>,
    cfg: LlamaConfig,
    form: AttentionForm,
    max_batch: usize,
    max_seq: usize,
    /// Longest piece the prefill profile takes, and the most cached tokens it allows.
    max_input: usize,
    prefill_past_max: usize,
    /// Cache capacity of the tensorrt form (the converter's max_seq_len).
    capacity: usize,
    /// Per slot, per layer: (key, value) bytes.
    kv: Vec<Vec<(Vec<u8>, Vec<u8>)>>,
    lens: Vec<usize>,
}

impl TrtBackend {
    /// Opens `dir/model.engine` with TensorRT.
    pub fn open(dir: &Path, max_batch: usize, max_seq: usize) -> Result<Self> {
        let m = Manifest::load(dir)?;
        m.check_files(dir)?;
        Self::check(dir, &m, max_batch, max_seq)?;
        let session = TrtSession::open(dir, &m, None)?;
        Self::with_runner(&m, Box::new(session), max_batch, max_seq)
    }

    fn check(dir: &Path, m: &Manifest, max_batch: usize, max_seq: usize) -> Result<()> {
        if TrtManifest::from_manifest(m).is_none() {
            // No engine here; still say first when this GPU could not run one anyway.
            if let Ok((_, gpu)) = session::probe_gpu() {
                if !crate::trt::RTX_TARGETS.contains(&gpu.sm) {
                    return Err(Error::Unavailable(format!(
                        "{} (sm_{}) cannot run TensorRT-RTX 1.7 engines (they run on sm_80/86/89/120/121), and {} has no model.engine; use --backend cuda or --backend ort here",
                        gpu.name,
                        gpu.sm,
                        dir.display()
                    )));
                }
            }
            return Err(Error::Unsupported(format!(
                "{} has no model.engine: run `trtforge build --engine-dir {}`",
                dir.display(),
                dir.display()
            )));
        }
        if max_seq > m.build.max_seq_len {
            return Err(Error::Invalid(format!(
                "{max_seq} tokens requested, but {} was built for max_seq_len {}",
                dir.display(),
                m.build.max_seq_len
            )));
        }
        if max_batch > m.build.max_batch_size {
            return Err(Error::Invalid(format!(
                "{max_batch} sequences requested, but {} was built for max_batch_size {}",
                dir.display(),
                m.build.max_batch_size
            )));
        }
        Ok(())
    }

    /// A backend over any runner of the engine's I/O contract (tests use ONNX Runtime).
    pub fn with_runner(m: &Manifest, runner: Box<dyn EngineRunner>, max_batch: usize, max_seq: usize) -> Result<Self> {
        let sec = TrtManifest::from_manifest(m)
            .ok_or_else(|| Error::Invalid("the manifest has no tensorrt section".into()))?
            .map_err(|e| Error::Invalid(format!("tensorrt section: {e}")))?;
        let elem = match m.onnx.dtype.as_str() {
            "float32" => 4,
            "float16" => 2,
            d => return Err(Error::Unsupported(format!("KV cache dtype {d}"))),
        };
        let cfg = m.model_config.clone();
        let b = &m.build;
        let capacity = b.max_seq_len;
        let form = sec.attention;
        let per = cfg.num_key_value_heads * capacity * cfg.head_dim * elem; // (kv_heads, capacity, head_dim)
        let kv = (0..max_batch)
            .map(|_| {
                (0..cfg.num_hidden_layers)
                    .map(|_| match form {
                        AttentionForm::Portable => (Vec::with_capacity(per), Vec::with_capacity(per)),
                        AttentionForm::Tensorrt => (vec![0u8; per], vec![0u8; per]),
                    })
                    .collect()
            })
            .collect();
        Ok(TrtBackend {
            runner,
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

    /// Tokens of the next piece of a chunk with `left` tokens still to run in `slot`.
    fn piece_len(&self, slot: usize, left: usize) -> usize {
        let past = self.lens[slot];
        if left > 1 && past <= self.prefill_past_max {
            left.min(self.max_input).min(self.prefill_past_max + self.max_input - past).max(1)
        } else {
            1
        }
    }

    /// Runs pieces (slot, tokens) of equal length as one batch; returns logits per piece (n, vocab).
    fn run_group(&mut self, pieces: &[(usize, &[u32])]) -> Result<Vec<Vec<f32>>> {
        let b = pieces.len();
        let n = pieces[0].1.len();
        let c = &self.cfg;
        let (kvh, hd, vocab) = (c.num_key_value_heads, c.head_dim, c.vocab_size);
        let i64s = |v: &mut dyn Iterator<Item = i64>| v.flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let t = |name: String, dims: Vec<i64>, bytes: Vec<u8>| HostTensor { name, dims, bytes };
        let bn = vec![b as i64, n as i64];
        let mut ids = pieces.iter().flat_map(|(_, tk)| tk.iter().map(|&x| x as i64));
        let mut pos = pieces.iter().flat_map(|&(s, _)| (self.lens[s]..self.lens[s] + n).map(|p| p as i64));
        let mut inputs = vec![
            t("input_ids".into(), bn.clone(), i64s(&mut ids)),
            t("position_ids".into(), bn.clone(), i64s(&mut pos)),
        ];
        let cache_len = match self.form {
            AttentionForm::Portable => {
                let past = self.lens[pieces[0].0]; // equal within a portable group
                let total = past + n;
                inputs.push(t(
                    "attention_mask".into(),
                    vec![b as i64, total as i64],
                    i64s(&mut (0..b * total).map(|_| 1)),
                ));
                past
            }
            AttentionForm::Tensorrt => {
                let mut past = pieces.iter().map(|&(s, _)| self.lens[s] as i64);
                inputs.push(t("past_seq_lens".into(), vec![b as i64], i64s(&mut past)));
                self.capacity
            }
        };
        let dims = vec![b as i64, kvh as i64, cache_len as i64, hd as i64];
        for l in 0..c.num_hidden_layers {
            let (mut k, mut v) = (Vec::new(), Vec::new());
            for &(s, _) in pieces {
                k.extend_from_slice(&self.kv[s][l].0);
                v.extend_from_slice(&self.kv[s][l].1);
            }
            inputs.push(t(format!("past_key_values.{l}.key"), dims.clone(), k));
            inputs.push(t(format!("past_key_values.{l}.value"), dims.clone(), v));
        }
        let profile = if n == 1 { DECODE_PROFILE } else { PREFILL_PROFILE };
        let outs = self.runner.run(profile, &inputs)?;
        let mut logits = vec![Vec::new(); b];
        for o in outs {
            if o.name == "logits" {
                let all: Vec<f32> =
                    o.bytes.chunks_exact(4).map(|x| f32::from_le_bytes([x[0], x[1], x[2], x[3]])).collect();
                if all.len() != b * n * vocab {
                    return Err(Error::Invalid(format!("logits of shape {:?}, expected [{b}, {n}, {vocab}]", o.dims)));
                }
                for (i, row) in logits.iter_mut().enumerate() {
                    *row = all[i * n * vocab..(i + 1) * n * vocab].to_vec(); // (n, vocab)
                }
            } else if let Some(rest) = o.name.strip_prefix("present.") {
                let bad = || Error::Invalid(format!("unexpected output {}", o.name));
                let (l, kind) = rest.split_once('.').ok_or_else(bad)?;
                let l: usize = l.parse().map_err(|_| bad())?;
                let per = o.bytes.len() / b; // (kv_heads, past + n or capacity, head_dim)
                for (i, &(s, _)) in pieces.iter().enumerate() {
                    let dst = if kind == "key" { &mut self.kv[s][l].0 } else { &mut self.kv[s][l].1 };
                    dst.clear();
                    dst.extend_from_slice(&o.bytes[i * per..(i + 1) * per]);
                }
            }
        }
        for &(s, _) in pieces {
            self.lens[s] += n;
        }
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
                self.kv[slot].iter_mut().for_each(|(k, v)| {
                    k.clear();
                    v.clear()
                });
            }
        }
    }

    fn forward(&mut self, chunks: &[SeqChunk], want: Logits) -> Result<LogitsOut> {
        check_chunks(self, chunks)?;
        let vocab = self.cfg.vocab_size;
        let mut done = vec![0usize; chunks.len()];
        let mut rows: Vec<Vec<f32>> = vec![Vec::new(); chunks.len()];
        // Rounds: each chunk contributes its next piece; pieces that fit one enqueue are grouped.
        while done.iter().zip(chunks).any(|(&d, c)| d < c.tokens.len()) {
            let mut groups: Vec<(usize, usize, Vec<usize>)> = Vec::new(); // (len, past, chunk indices)
            for (i, c) in chunks.iter().enumerate() {
                let left = c.tokens.len() - done[i];
                if left == 0 {
                    continue;
                }
                let len = self.piece_len(c.slot, left);
                let past = if self.form == AttentionForm::Portable { self.lens[c.slot] } else { 0 };
                match groups.iter_mut().find(|g| g.0 == len && g.1 == past) {
                    Some(g) => g.2.push(i),
                    None => groups.push((len, past, vec![i])),
                }
            }
            for (len, _, idx) in groups {
                let pieces: Vec<(usize, &[u32])> =
                    idx.iter().map(|&i| (chunks[i].slot, &chunks[i].tokens[done[i]..done[i] + len])).collect();
                let out = self.run_group(&pieces)?;
                for (&i, l) in idx.iter().zip(out) {
                    rows[i].extend_from_slice(&l);
                    done[i] += len;
                }
            }
        }
        let mut data = Vec::new();
        for r in rows {
            match want {
                Logits::All => data.extend_from_slice(&r),
                Logits::Last => data.extend_from_slice(&r[r.len() - vocab..]),
            }
        }
        Ok(LogitsOut { vocab, data })
    }
}
