//! Calibration: token windows from the configured texts, and the per-linear-input activation
//! statistics AWQ needs, collected in one pass of the CPU reference over those windows.
//!
//! Windows: each text is tokenized without special tokens, the token streams are concatenated in
//! config order and cut into consecutive non-overlapping windows of `seq_len`; `samples` of them are
//! drawn without replacement by a seeded shuffle. A model without a tokenizer (the `preset:` shapes)
//! has no text to calibrate on: it calibrates on seeded uniform-random token windows, and the
//! manifest says so.
//!
//! Statistics per input site (the input shared by q/k/v, o_proj's, gate/up's, down_proj's):
//! the mean |x| of every channel over all calibration tokens, and the Gram matrix `XᵀX` over a seeded
//! subsample of at most [`GRAM_ROWS`] tokens, so a layer's output error `‖X ΔWᵀ‖²` is
//! `Σ_o Δw_o · G · Δw_oᵀ` without keeping activations.
use crate::backend::{cpu::CpuBackend, Backend, Logits, SeqChunk};
use crate::config::CalibrationSection;
use crate::error::{Error, Result};
use crate::manifest::sha256_bytes;
use crate::model::tokenizer::Tokenizer;
use crate::model::weights::SplitMix64;
use crate::model::{LlamaConfig, ModelWeights, Param};
use ndarray::{linalg::general_mat_mul, s, ArrayView2, ArrayViewMut2};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

/// Calibration tokens whose activations enter the Gram matrices (a seeded subsample beyond this).
pub const GRAM_ROWS: usize = 4096;
/// Columns per task when accumulating a Gram matrix.
const GRAM_BLOCK: usize = 64;

#[derive(Debug, Clone, Serialize)]
pub struct TextRecord {
    pub name: String,
    pub path: String,
    pub sha256: String,
    pub bytes: usize,
    pub tokens: usize,
}

/// What the calibration set was, for the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationRecord {
    /// "texts" or "random_tokens".
    pub source: String,
    pub texts: Vec<TextRecord>,
    pub samples: usize,
    pub seq_len: usize,
    pub seed: u64,
    /// Tokens of all texts together, and how many `seq_len` windows they hold.
    pub tokens_available: usize,
    pub windows_available: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub struct CalibrationData {
    pub windows: Vec<Vec<u32>>, // (samples, seq_len)
    pub record: CalibrationRecord,
}

/// Builds the calibration windows a config asks for. `tokenizer` None means random token windows.
pub fn calibration_windows(
    cal: &CalibrationSection,
    tokenizer: Option<&Tokenizer>,
    c: &LlamaConfig,
    log: &mut dyn FnMut(&str),
) -> Result<CalibrationData> {
    let (samples, seq_len) = (cal.samples, cal.seq_len);
    if samples == 0 || seq_len < 2 {
        return Err(Error::Invalid(format!(
            "calibration needs samples >= 1 and seq_len >= 2 (got samples {samples}, seq_len {seq_len})"
        )));
    }
    if seq_len > c.max_position_embeddings {
        return Err(Error::Invalid(format!(
            "calibration.seq_len {seq_len} exceeds the model's context of {} tokens",
            c.max_position_embeddings
        )));
    }
    let need = samples * seq_len;
    let mut rng = SplitMix64(cal.seed ^ 0xCA11_B4A7_E000_0000);
    let Some(tok) = tokenizer else {
        log(&format!(
            "calibration: the model has no tokenizer; using {samples} seeded random token windows of {seq_len} (seed {})",
            cal.seed
        ));
        let vocab = c.vocab_size as u64;
        let windows = (0..samples).map(|_| (0..seq_len).map(|_| (rng.next_u64() % vocab) as u32).collect()).collect();
        let record = CalibrationRecord {
            source: "random_tokens".into(),
            texts: Vec::new(),
            samples,
            seq_len,
            seed: cal.seed,
            tokens_available: need,
            windows_available: samples,
            note: Some(format!(
                "the model has no tokenizer, so the configured texts ({}) were not read; token ids are uniform in [0, {vocab}) \
                 from splitmix64 seeded with the calibration seed",
                cal.texts.len()
            )),
        };
        return Ok(CalibrationData { windows, record });
    };
    if cal.texts.is_empty() {
        return Err(Error::Invalid("calibration.texts is empty; list at least one UTF-8 text file".into()));
    }
    let mut ids = Vec::new();
    let mut texts = Vec::new();
    for p in &cal.texts {
        let bytes = std::fs::read(p).map_err(|e| Error::io(p, e))?;
        let text =
            std::str::from_utf8(&bytes).map_err(|e| Error::format(p, format!("calibration text is not UTF-8: {e}")))?;
        if text.trim().is_empty() {
            return Err(Error::format(p, "calibration text is empty"));
        }
        let t = tok.encode(text, false)?;
        texts.push(TextRecord {
            name: p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            path: p.display().to_string(),
            sha256: sha256_bytes(&bytes),
            bytes: bytes.len(),
            tokens: t.len(),
        });
        ids.extend(t);
    }
    let available = ids.len() / seq_len;
    if available < samples {
        let per: Vec<String> = texts.iter().map(|t| format!("{} {}", t.name, t.tokens)).collect();
        return Err(Error::Invalid(format!(
            "calibration needs samples × seq_len = {samples} × {seq_len} = {need} tokens, but the texts have {} tokens \
             ({}), enough for {available} windows of {seq_len}; add texts or lower calibration.samples or seq_len",
            ids.len(),
            per.join(", ")
        )));
    }
    // Partial Fisher–Yates: the first `samples` entries become a seeded draw without replacement.
    let mut order: Vec<usize> = (0..available).collect();
    for i in 0..samples {
        let j = i + (rng.next_u64() % (available - i) as u64) as usize;
        order.swap(i, j);
    }
    let mut chosen = order[..samples].to_vec();
    chosen.sort_unstable();
    let windows = chosen.iter().map(|&w| ids[w * seq_len..(w + 1) * seq_len].to_vec()).collect();
    log(&format!(
        "calibration: {samples} windows of {seq_len} tokens drawn from {available} ({} tokens in {} texts, seed {})",
        ids.len(),
        texts.len(),
        cal.seed
    ));
    let record = CalibrationRecord {
        source: "texts".into(),
        texts,
        samples,
        seq_len,
        seed: cal.seed,
        tokens_available: ids.len(),
        windows_available: available,
        note: None,
    };
    Ok(CalibrationData { windows, record })
}

/// Where a linear layer's input comes from. Linears of one site see the same input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Site {
    /// attn_norm output → q, k, v
    AttnIn(usize),
    /// attention output → o
    AttnOut(usize),
    /// ffn_norm output → gate, up
    MlpIn(usize),
    /// silu(gate)·up → down
    MlpOut(usize),
    /// final norm output → LM head
    HeadIn,
}

impl Site {
    /// The site a linear reads from.
    pub fn of(p: Param) -> Option<Site> {
        use Param::*;
        Some(match p {
            Wq(l) | Wk(l) | Wv(l) => Site::AttnIn(l),
            Wo(l) => Site::AttnOut(l),
            WGate(l) | WUp(l) => Site::MlpIn(l),
            WDown(l) => Site::MlpOut(l),
            LmHead => Site::HeadIn,
            _ => return None,
        })
    }
    /// The linear the forward pass reaches first at this site (the one the observer records).
    fn first(self) -> Param {
        match self {
            Site::AttnIn(l) => Param::Wq(l),
            Site::AttnOut(l) => Param::Wo(l),
            Site::MlpIn(l) => Param::WGate(l),
            Site::MlpOut(l) => Param::WDown(l),
            Site::HeadIn => Param::LmHead,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Site::AttnIn(_) => "attn_in",
            Site::AttnOut(_) => "attn_out",
            Site::MlpIn(_) => "mlp_in",
            Site::MlpOut(_) => "mlp_out",
            Site::HeadIn => "head_in",
        }
    }
}

/// Activation statistics of one site's input (dim channels).
#[derive(Debug, Clone)]
pub struct SiteStats {
    pub dim: usize,
    /// Tokens seen.
    pub rows: usize,
    /// Σ |x_c| over all tokens. (dim)
    pub abs_sum: Vec<f64>,
    /// Σ x xᵀ over the subsampled tokens. (dim, dim), symmetric once [`finish`](Self::finish)ed.
    pub gram: Vec<f32>,
    pub gram_rows: usize,
}

impl SiteStats {
    fn new(dim: usize) -> Self {
        SiteStats { dim, rows: 0, abs_sum: vec![0.0; dim], gram: vec![0.0; dim * dim], gram_rows: 0 }
    }

    /// Mean |x| per channel. (dim)
    pub fn abs_mean(&self) -> Vec<f32> {
        self.abs_sum.iter().map(|s| (s / self.rows.max(1) as f64) as f32).collect()
    }

    fn update(&mut self, x: &[f32], sel: &[usize]) {
        let d = self.dim;
        let t = x.len() / d;
        for row in x.chunks_exact(d) {
            for (a, v) in self.abs_sum.iter_mut().zip(row) {
                *a += v.abs() as f64;
            }
        }
        self.rows += t;
        let sel: Vec<usize> = sel.iter().copied().filter(|&r| r < t).collect();
        if sel.is_empty() {
            return;
        }
        let mut xs = Vec::with_capacity(sel.len() * d); // (m, dim)
        for &r in &sel {
            xs.extend_from_slice(&x[r * d..(r + 1) * d]);
        }
        gram_add_upper(&mut self.gram, &xs, sel.len(), d);
        self.gram_rows += sel.len();
    }

    /// Copies the accumulated upper triangle into the lower one.
    fn finish(&mut self) {
        let d = self.dim;
        for i in 0..d {
            for j in 0..i {
                self.gram[i * d + j] = self.gram[j * d + i];
            }
        }
    }
}

/// `G[i][j] += Σ_r x[r][i] x[r][j]` for j >= i: row blocks of G in parallel. x (m, d), G (d, d).
fn gram_add_upper(g: &mut [f32], x: &[f32], m: usize, d: usize) {
    let Ok(xa) = ArrayView2::from_shape((m, d), x) else { return };
    g.par_chunks_mut(GRAM_BLOCK * d).enumerate().for_each(|(bi, blk)| {
        let i0 = bi * GRAM_BLOCK;
        let rows = blk.len() / d;
        let Ok(mut ga) = ArrayViewMut2::from_shape((rows, d), blk) else { return };
        let a = xa.slice(s![.., i0..i0 + rows]); // (m, rows)
        let b = xa.slice(s![.., i0..]); // (m, d - i0)
        let mut gs = ga.slice_mut(s![.., i0..]);
        general_mat_mul(1.0, &a.t(), &b, 1.0, &mut gs);
    });
}

/// Runs the CPU reference over `windows` and collects statistics for `sites`. Deterministic for a
/// given `seed` (it picks the Gram rows).
pub fn collect_stats(
    w: Arc<ModelWeights>,
    windows: &[Vec<u32>],
    sites: &HashSet<Site>,
    seed: u64,
    log: &mut dyn FnMut(&str),
) -> Result<HashMap<Site, SiteStats>> {
    let seq = windows.iter().map(|w| w.len()).max().unwrap_or(0);
    if seq == 0 {
        return Err(Error::Invalid("no calibration windows".into()));
    }
    let total: usize = windows.iter().map(|w| w.len()).sum();
    let p_keep = (GRAM_ROWS as f64 / total as f64).min(1.0);
    let mut rng = SplitMix64(seed ^ 0x6AA3_5EED_0000_0001);
    let mut be = CpuBackend::new(w, 1, seq)?;
    let mut stats: HashMap<Site, SiteStats> = HashMap::new();
    let want = if sites.contains(&Site::HeadIn) { Logits::All } else { Logits::Last };
    let t0 = Instant::now();
    let step = (windows.len() / 8).max(1);
    for (wi, win) in windows.iter().enumerate() {
        let sel: Vec<usize> =
            (0..win.len()).filter(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p_keep).collect();
        let mut obs = |p: Param, x: &[f32], cols: usize| {
            if let Some(site) = Site::of(p).filter(|s| s.first() == p && sites.contains(s)) {
                stats.entry(site).or_insert_with(|| SiteStats::new(cols)).update(x, &sel);
            }
        };
        be.reset(0);
        be.forward_observed(&[SeqChunk { slot: 0, tokens: win }], want, Some(&mut obs))?;
        if (wi + 1) % step == 0 || wi + 1 == windows.len() {
            log(&format!(
                "calibration pass: window {}/{} ({:.1} s)",
                wi + 1,
                windows.len(),
                t0.elapsed().as_secs_f64()
            ));
        }
    }
    for s in stats.values_mut() {
        s.finish();
    }
    if let Some(missing) = sites.iter().find(|s| !stats.contains_key(s)) {
        return Err(Error::Invalid(format!("calibration saw no input for {missing:?}")));
    }
    Ok(stats)
}
