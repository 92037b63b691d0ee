//! Calibration, the part of quantization that runs a model: token windows from the configured texts
//! (or seeded random tokens), one pass of the CPU reference over them collecting the activation
//! statistics AWQ needs ([`crate::quant::stats`]), and [`quantize_for_config`], which picks RTN or
//! AWQ as the config says. `quant` itself stays pure (weights in, codes out).
//!
//! Windows: each text is tokenized without special tokens, the token streams are concatenated in
//! config order and cut into consecutive non-overlapping windows of `seq_len`; `samples` of them are
//! drawn without replacement by a seeded shuffle. A model without a tokenizer (the `preset:` shapes)
//! has no text to calibrate on: it calibrates on seeded uniform-random token windows, and the
//! manifest says so.
use crate::backend::{cpu::CpuBackend, Backend, Logits, SeqChunk};
use crate::engine_dir::config::{CalibrationSection, EngineConfig, Precision};
use crate::error::{Error, Result};
use crate::model::tokenizer::Tokenizer;
use crate::model::{LlamaConfig, ModelWeights, Param, Tensor};
use crate::quant::awq::{self, quantize_awq_with_stats, AwqOptions, AwqRecord};
use crate::quant::stats::{Site, SiteStats, GRAM_ROWS};
use crate::quant::{check_applicable, decoder_linears, rtn, stored_in, QuantizedModel, WeightFormat};
use crate::util::{seeded_prompts, sha256_bytes, SplitMix64};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

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
        let vocab = c.vocab_size;
        let windows = seeded_prompts(&vec![seq_len; samples], vocab, cal.seed ^ 0xCA11_B4A7_E000_0000);
        let record = CalibrationRecord {
            source: "random_tokens".into(),
            texts: Vec::new(),
            samples,
            seq_len,
            seed: cal.seed,
            tokens_available: need,
            windows_available: samples,
            note: Some(format!(
                "the model has no tokenizer, so the configured texts ({}) were not read; token ids are uniform in [{}, {vocab}) \
                 (`util::seeded_prompts`, seeded from the calibration seed)",
                cal.texts.len(),
                crate::util::FIRST_PROMPT_ID.min(vocab as u64 - 1)
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

/// A model with no tensors, standing in while the real one is lent to the calibration backend.
fn placeholder(c: &LlamaConfig) -> ModelWeights {
    let empty = || Tensor::new(vec![0], Vec::new());
    ModelWeights { config: c.clone(), embed: empty(), layers: Vec::new(), final_norm: empty(), lm_head: None }
}

/// The calibration statistics AWQ needs for `params`: one pass of the float model over `windows`.
pub fn awq_stats(
    w: &mut ModelWeights,
    params: &[Param],
    windows: &[Vec<u32>],
    seed: u64,
    log: &mut dyn FnMut(&str),
) -> Result<HashMap<Site, SiteStats>> {
    let sites: HashSet<Site> = params.iter().filter_map(|&p| Site::of(p)).collect();
    // The backend needs an Arc; lend it the weights instead of copying them.
    let c = w.config.clone();
    let arc = Arc::new(std::mem::replace(w, placeholder(&c)));
    let stats = collect_stats(Arc::clone(&arc), windows, &sites, seed, log);
    *w = Arc::try_unwrap(arc).unwrap_or_else(|a| (*a).clone());
    stats
}

/// Calibrates on `windows`, searches scales (and clip ratios) per site, folds the scales into `w`
/// and quantizes `params` of the folded model.
pub fn quantize_awq(
    w: &mut ModelWeights,
    params: &[Param],
    format: WeightFormat,
    pad_to_group: bool,
    windows: &[Vec<u32>],
    opts: &AwqOptions,
    log: &mut dyn FnMut(&str),
) -> Result<(QuantizedModel, AwqRecord)> {
    check_applicable(w, params, format, pad_to_group)?;
    let t0 = Instant::now();
    let stats = awq_stats(w, params, windows, opts.seed, log)?;
    let (qm, mut rec) = quantize_awq_with_stats(w, params, format, pad_to_group, &stats, opts, log)?;
    rec.calibration_seconds = ((t0.elapsed().as_secs_f64() - rec.search_seconds) * 10.0).round() / 10.0;
    Ok((qm, rec))
}

/// What quantization did, for `convert`: the quantized linears and the manifest section.
pub struct QuantOutcome {
    pub quantized: QuantizedModel,
    /// `Manifest.extra["quantization"]` (convert adds the size on disk).
    pub section: serde_json::Map<String, serde_json::Value>,
}

/// Quantizes `w` as the config's `quantization` section says. Fp32/Fp16 return `None`. AWQ folds its
/// scales into `w` (the float model stays exact), so export `w` together with the result.
pub fn quantize_for_config(
    cfg: &EngineConfig,
    w: &mut ModelWeights,
    tokenizer: Option<&Tokenizer>,
    log: &mut dyn FnMut(&str),
) -> Result<Option<QuantOutcome>> {
    let q = &cfg.quantization;
    let format = q.precision.format(q.group_size);
    if !format.is_quantized() {
        return Ok(None);
    }
    let t0 = std::time::Instant::now();
    let params = decoder_linears(&w.config);
    check_applicable(w, &params, format, q.pad_to_group)?;
    let padded: Vec<serde_json::Value> = {
        let mut dims: Vec<(usize, usize)> = params
            .iter()
            .map(|&p| (w.get(p).cols(), stored_in(format, w.get(p).cols())))
            .filter(|(a, b)| a != b)
            .collect();
        dims.sort_unstable();
        dims.dedup();
        dims.iter().map(|(a, b)| serde_json::json!({"in_features": a, "stored_in": b})).collect()
    };
    let mut section = match serde_json::json!({
        "precision": q.precision.as_str(),
        "format": format.name(),
        "group_size": format.group_size(),
        "symmetric": true,
        "zero_points": "none (all zero)",
        "scale_dtype": "float16",
        "activation_dtype": "float16",
        "quantized": "q/k/v/o/gate/up/down of every decoder layer; embeddings, norms and LM head stay float16",
        "quantized_linears": params.len(),
        "padded_inputs": padded,
        "layout": "docs/formats.md",
    }) {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    // int4_awq always calibrates; int8 uses AWQ's scales and clip search when a calibration section is
    // given (per-channel RTN otherwise); int4_rtn never calibrates.
    let use_awq = match q.precision {
        Precision::Int4Awq => true,
        Precision::Int8 => q.calibration.is_some(),
        _ => false,
    };
    let quantized = match use_awq {
        true => {
            let cal = q
                .calibration
                .as_ref()
                .ok_or_else(|| Error::Invalid("quantization.precision int4_awq needs a calibration section".into()))?;
            let data = calibration_windows(cal, tokenizer, &w.config, log)?;
            let mut opts = awq::AwqOptions { seed: cal.seed, ..Default::default() };
            if format == WeightFormat::I8 {
                // A whole row per scale: shrinking its absmax below 0.8 never pays off.
                opts.max_shrink = 0.2;
            }
            let (qm, rec) = quantize_awq(w, &params, format, q.pad_to_group, &data.windows, &opts, log)?;
            section.insert("method".into(), "awq".into());
            section.insert("calibration".into(), serde_json::to_value(&data.record).unwrap_or_default());
            section.insert("awq".into(), serde_json::to_value(&rec).unwrap_or_default());
            qm
        }
        false => {
            if q.calibration.is_some() {
                log(&format!("note: {} does not calibrate; the calibration section is ignored", q.precision.as_str()));
            }
            section.insert("method".into(), "rtn".into());
            rtn::quantize_params(w, &params, format, q.pad_to_group, None)?
        }
    };
    section.insert("quantize_seconds".into(), ((t0.elapsed().as_secs_f64() * 10.0).round() / 10.0).into());
    Ok(Some(QuantOutcome { quantized, section }))
}
