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
use crate::engine_dir::config::{CalibrationSection, EngineConfig, QuantMethod};
use crate::error::{Error, Result};
use crate::model::tokenizer::Tokenizer;
use crate::model::{LlamaConfig, ModelWeights, Param, Tensor};
use crate::quant::awq::{self, quantize_awq_with_stats, AwqOptions, AwqRecord};
use crate::quant::fp8::{self, AbsHistogram};
use crate::quant::kv::{KvAmax, KvCacheDtype, KvRotation, KvScaleMode, KvScales};
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
        let bytes = crate::util::read_file(p, None)?;
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
    collect_stats_with(w, windows, sites, seed, crate::backend::cpu::CpuQuant::default(), log)
}

/// [`collect_stats`] on the CPU reference computing with `quant` (fp8 linear inputs: the statistics
/// are then of the fp8-rounded inputs the linears multiply).
pub fn collect_stats_with(
    w: Arc<ModelWeights>,
    windows: &[Vec<u32>],
    sites: &HashSet<Site>,
    seed: u64,
    quant: crate::backend::cpu::CpuQuant,
    log: &mut dyn FnMut(&str),
) -> Result<HashMap<Site, SiteStats>> {
    let seq = windows.iter().map(|w| w.len()).max().unwrap_or(0);
    if seq == 0 {
        return Err(Error::Invalid("no calibration windows".into()));
    }
    let total: usize = windows.iter().map(|w| w.len()).sum();
    let p_keep = (GRAM_ROWS as f64 / total as f64).min(1.0);
    let mut rng = SplitMix64(seed ^ 0x6AA3_5EED_0000_0001);
    let mut be = CpuBackend::with_quant(w, 1, seq, quant)?;
    let mut stats: HashMap<Site, SiteStats> = HashMap::new();
    let want = if sites.contains(&Site::HeadIn) { Logits::All } else { Logits::Last };
    let t0 = Instant::now();
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
        log_progress(log, wi, windows.len(), t0);
    }
    for s in stats.values_mut() {
        s.finish();
    }
    all_sites_seen(sites, &stats)?;
    Ok(stats)
}

/// Per site `(C, H_q)`, each row-major: what [`collect_act_aware`] returns.
pub type ActAwareStats = HashMap<Site, (Vec<f32>, Vec<f32>)>;

/// Per site `(C = Σ x x_qᵀ, H_q = Σ x_q x_qᵀ)` over the subsampled calibration tokens of the float
/// model, `x_q` = `x` rounded to E4M3 with the site's static scale as the engine rounds it
/// ([`fp8::fake_quant`]): what activation-aware GPTQ needs ([`crate::quant::gptq::act_aware_transfer`]).
pub fn collect_act_aware(
    w: Arc<ModelWeights>,
    windows: &[Vec<u32>],
    scales: &HashMap<Site, f32>,
    seed: u64,
    log: &mut dyn FnMut(&str),
) -> Result<ActAwareStats> {
    use ndarray::linalg::general_mat_mul;
    use ndarray::{ArrayView2, ArrayViewMut2};
    let seq = windows.iter().map(|w| w.len()).max().unwrap_or(0);
    if seq == 0 {
        return Err(Error::Invalid("no calibration windows".into()));
    }
    let total: usize = windows.iter().map(|w| w.len()).sum();
    let p_keep = (GRAM_ROWS as f64 / total as f64).min(1.0);
    let mut rng = SplitMix64(seed ^ 0x6AA3_5EED_0000_0001);
    let mut be = CpuBackend::new(w, 1, seq)?;
    let mut acc: HashMap<Site, (Vec<f32>, Vec<f32>)> = HashMap::new();
    let t0 = Instant::now();
    for (wi, win) in windows.iter().enumerate() {
        let sel: Vec<usize> =
            (0..win.len()).filter(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p_keep).collect();
        let mut obs = |p: Param, x: &[f32], d: usize| {
            let Some(site) = Site::of(p).filter(|s| s.first() == p) else { return };
            let Some(&sc) = scales.get(&site) else { return };
            let rows: Vec<usize> = sel.iter().copied().filter(|&r| r < x.len() / d).collect();
            if rows.is_empty() {
                return;
            }
            let mut xs = Vec::with_capacity(rows.len() * d);
            for &r in &rows {
                xs.extend_from_slice(&x[r * d..(r + 1) * d]);
            }
            let xq: Vec<f32> = xs.iter().map(|&v| fp8::fake_quant(v, sc)).collect();
            let (c, h) = acc.entry(site).or_insert_with(|| (vec![0.0; d * d], vec![0.0; d * d]));
            let (Ok(xa), Ok(qa)) =
                (ArrayView2::from_shape((rows.len(), d), &xs[..]), ArrayView2::from_shape((rows.len(), d), &xq[..]))
            else {
                return;
            };
            if let Ok(mut ca) = ArrayViewMut2::from_shape((d, d), &mut c[..]) {
                general_mat_mul(1.0, &xa.t(), &qa, 1.0, &mut ca);
            }
            if let Ok(mut ha) = ArrayViewMut2::from_shape((d, d), &mut h[..]) {
                general_mat_mul(1.0, &qa.t(), &qa, 1.0, &mut ha);
            }
        };
        be.reset(0);
        be.forward_observed(&[SeqChunk { slot: 0, tokens: win }], Logits::Last, Some(&mut obs))?;
        log_progress(log, wi, windows.len(), t0);
    }
    let sites: HashSet<Site> = scales.keys().copied().collect();
    all_sites_seen(&sites, &acc)?;
    Ok(acc)
}

/// "calibration pass: window i/n" about eight times per pass (and after the last window).
fn log_progress(log: &mut dyn FnMut(&str), wi: usize, n: usize, t0: Instant) {
    if (wi + 1) % (n / 8).max(1) == 0 || wi + 1 == n {
        log(&format!("calibration pass: window {}/{} ({:.1} s)", wi + 1, n, t0.elapsed().as_secs_f64()));
    }
}

/// An error naming the first of `sites` that a calibration pass recorded nothing for.
fn all_sites_seen<V>(sites: &HashSet<Site>, seen: &HashMap<Site, V>) -> Result<()> {
    match sites.iter().find(|s| !seen.contains_key(s)) {
        Some(missing) => Err(Error::Invalid(format!("calibration saw no input for {missing:?}"))),
        None => Ok(()),
    }
}

/// Activation and KV ranges from one pass of the CPU reference: per input site a histogram of |x|
/// (for fp8 activation scales), and per (layer, head) the absmax of K (after RoPE) and V.
pub struct Ranges {
    pub sites: HashMap<Site, AbsHistogram>,
    /// Per input channel, the absmax over all calibration tokens (SmoothQuant's statistic).
    pub channel_amax: HashMap<Site, Vec<f32>>,
    pub kv: KvAmax,
}

/// Runs the float model over `windows`, recording the ranges of `sites`' inputs and of the KV cache
/// (with `kv_rot`, also of K rotated by it: [`KvAmax::k_rot_amax`]).
pub fn collect_ranges(
    w: &mut ModelWeights,
    windows: &[Vec<u32>],
    sites: &HashSet<Site>,
    kv_rot: Option<&KvRotation>,
    log: &mut dyn FnMut(&str),
) -> Result<Ranges> {
    let seq = windows.iter().map(|w| w.len()).max().unwrap_or(0);
    if seq == 0 {
        return Err(Error::Invalid("no calibration windows".into()));
    }
    let c = w.config.clone();
    let arc = Arc::new(std::mem::replace(w, placeholder(&c)));
    let result = (|| {
        let mut be = CpuBackend::new(Arc::clone(&arc), 1, seq)?;
        let mut hists: HashMap<Site, AbsHistogram> = HashMap::new();
        let mut chans: HashMap<Site, Vec<f32>> = HashMap::new();
        let mut kv = KvAmax::new(c.num_hidden_layers, c.num_key_value_heads);
        let t0 = Instant::now();
        for (wi, win) in windows.iter().enumerate() {
            let mut obs = |p: Param, x: &[f32], cols: usize| {
                if let Some(site) = Site::of(p).filter(|s| s.first() == p && sites.contains(s)) {
                    hists.entry(site).or_default().update(x);
                    let m = chans.entry(site).or_insert_with(|| vec![0.0; cols]);
                    for row in x.chunks(cols) {
                        m.iter_mut().zip(row).for_each(|(a, v)| *a = a.max(v.abs()));
                    }
                }
            };
            be.reset(0);
            be.forward_observed(&[SeqChunk { slot: 0, tokens: win }], Logits::Last, Some(&mut obs))?;
            for l in 0..c.num_hidden_layers {
                let (k, v) = be.cached_kv(l, 0);
                kv.update(l, false, k, c.head_dim);
                kv.update(l, true, v, c.head_dim);
                if let Some(r) = kv_rot {
                    kv.update_rotated_k(l, k, c.head_dim, r);
                }
            }
            log_progress(log, wi, windows.len(), t0);
        }
        all_sites_seen(sites, &hists)?;
        Ok(Ranges { sites: hists, channel_amax: chans, kv })
    })();
    *w = Arc::try_unwrap(arc).unwrap_or_else(|a| (*a).clone());
    result
}

/// Folding order of SmoothQuant's sites: per layer attn_out, attn_in, mlp_out, mlp_in.
pub fn smooth_order(s: Site) -> (usize, usize) {
    match s {
        Site::AttnOut(l) => (l, 0),
        Site::AttnIn(l) => (l, 1),
        Site::MlpOut(l) => (l, 2),
        Site::MlpIn(l) => (l, 3),
        Site::HeadIn => (usize::MAX, 0),
    }
}

/// The layer of a site (0 for the LM head's).
fn site_layer(s: Site) -> usize {
    match s {
        Site::AttnIn(l) | Site::AttnOut(l) | Site::MlpIn(l) | Site::MlpOut(l) => l,
        Site::HeadIn => 0,
    }
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

/// What quantization did, for `convert`: the quantized linears, the KV cache format and the
/// manifest section.
pub struct QuantOutcome {
    /// Empty when the weights stay float (fp16 with a quantized KV cache).
    pub quantized: QuantizedModel,
    /// A quantized KV cache; `scales` for calibrated mode.
    pub kv: Option<(KvCacheDtype, KvScaleMode, Option<KvScales>)>,
    /// K smoothing: the means of post-RoPE K, (layers, kv_heads, head_dim) flat, f16-exact values.
    pub kv_k_mean: Option<Vec<f32>>,
    /// K rotation of the cache (kv_rotate), for the ONNX export.
    pub kv_rotation: Option<KvRotation>,
    /// `Manifest.extra["quantization"]` (convert adds the size on disk).
    pub section: serde_json::Map<String, serde_json::Value>,
}

/// Quantizes `w` as the config's `quantization` section says. Fp32/Fp16 with an fp16 KV cache return
/// `None`. AWQ folds its scales into `w` (the float model stays exact), so export `w` together with
/// the result.
pub fn quantize_for_config(
    cfg: &EngineConfig,
    w: &mut ModelWeights,
    tokenizer: Option<&Tokenizer>,
    log: &mut dyn FnMut(&str),
) -> Result<Option<QuantOutcome>> {
    let q = &cfg.quantization;
    let kv_dtype = q.kv_cache;
    let format = q.precision;
    if !format.is_quantized() && !kv_dtype.quantized() {
        return Ok(None);
    }
    let format = format.is_quantized().then_some(format);
    let t0 = std::time::Instant::now();
    // The quantized linears: every decoder linear but the kinds `keep_fp16` names (a mixed recipe).
    let keep = |p: Param| crate::quant::linear_kind(p).is_some_and(|k| q.keep_fp16.iter().any(|x| x == k));
    let params: Vec<Param> = if format.is_some() {
        decoder_linears(&w.config).into_iter().filter(|&p| !keep(p)).collect()
    } else {
        Vec::new()
    };
    // fp8 weights whose inputs stay fp16 (`fp16_inputs`): no activation scale, no Q/DQ on the input.
    let fp16_in = |p: Param| crate::quant::linear_kind(p).is_some_and(|k| q.fp16_inputs.iter().any(|x| x == k));
    let act_params: Vec<Param> = params.iter().copied().filter(|&p| !fp16_in(p)).collect();
    if let Some(format) = format {
        check_applicable(w, &params, format, q.pad_to_group)?;
    }
    let mut section = serde_json::Map::new();
    section.insert("precision".into(), q.precision_name().into());
    if let Some(format) = format {
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
        let fp8 = format == WeightFormat::F8;
        if let serde_json::Value::Object(m) = serde_json::json!({
            "format": if fp8 { "fp8_e4m3" } else { format.name() },
            "group_size": format.group_size(),
            "symmetric": true,
            "zero_points": "none (all zero)",
            "scale_dtype": "float16",
            "activation_dtype": if fp8 && q.fp8_activations { "float8_e4m3fn (static per-tensor scale per linear input), float16 elsewhere" } else { "float16" },
            "fp16_inputs": q.fp16_inputs,
            "quantized": if q.keep_fp16.is_empty() {
                "q/k/v/o/gate/up/down of every decoder layer; embeddings, norms and LM head stay float16".to_string()
            } else {
                format!("the decoder linears but {} (mixed recipe: those stay float16, weights and inputs); embeddings, norms and LM head stay float16", q.keep_fp16.join(", "))
            },
            "keep_fp16": q.keep_fp16,
            "quantized_linears": params.len(),
            "padded_inputs": padded,
            "layout": "docs/formats.md",
        }) {
            section.extend(m);
        }
    }
    // Calibration data, drawn once for whatever needs it.
    let needs_ranges = (format == Some(WeightFormat::F8) && q.fp8_activations)
        || (kv_dtype.quantized() && (q.kv_scales == KvScaleMode::Calibrated || q.kv_smooth_k(&w.config)));
    let data = match (&q.calibration, needs_ranges || q.method != QuantMethod::Rtn) {
        (Some(cal), true) => Some(calibration_windows(cal, tokenizer, &w.config, log)?),
        (None, true) => {
            return Err(Error::Invalid(format!(
                "quantization.precision {} / kv_cache {} needs a calibration section",
                q.precision_name(),
                kv_dtype.as_str()
            )))
        }
        _ => None,
    };
    if let Some(d) = &data {
        section.insert("calibration".into(), serde_json::to_value(&d.record).unwrap_or_default());
    }
    // fp8 activation sites (the quantized linears' inputs).
    let fp8_sites: HashSet<Site> = if format == Some(WeightFormat::F8) && q.fp8_activations {
        act_params.iter().filter_map(|&p| Site::of(p)).collect()
    } else {
        HashSet::new()
    };
    // SmoothQuant (fp8): per-channel activation absmax from one pass of the float model, scales
    // folded into the model; the ranges below are then taken on the smoothed model.
    if let (Some(alpha), Some(d)) = (q.smooth_alpha, &data) {
        let r = collect_ranges(w, &d.windows, &fp8_sites, None, log)?;
        // A site's own scales move only its activations; its weights' column ranges also move when
        // the next site folds into them (o_proj's scales into v_proj's rows, down_proj's into
        // up_proj's), so that site goes first and every scale is computed on the current weights.
        let mut sites: Vec<Site> = fp8_sites.iter().copied().collect();
        sites.sort_by_key(|&s| smooth_order(s));
        let mut rec = serde_json::Map::new();
        for site in sites {
            let act = r.channel_amax.get(&site).ok_or_else(|| Error::Invalid(format!("no range for {site:?}")))?;
            let s = crate::quant::smooth::site_scales(w, site, act, alpha);
            awq::fold_scales(w, site, &s)?;
            let (mn, mx) = s.iter().fold((f32::INFINITY, 0.0f32), |(a, b), &v| (a.min(v), b.max(v)));
            let amax = act.iter().fold(0.0f32, |a, &v| a.max(v));
            rec.insert(
                format!("{}.{}", site.name(), site_layer(site)),
                serde_json::json!({"act_amax_before": amax, "scale_min": mn, "scale_max": mx}),
            );
        }
        section.insert(
            "smoothquant".into(),
            serde_json::json!({
                "alpha": alpha,
                "scale": "s_j = max|x_j|^alpha / max|W_j|^(1-alpha); x_j / s_j folded into the previous op (norm weight, v_proj rows, up_proj rows), W_j * s_j",
                "sites": rec,
            }),
        );
    }
    // K rotation (kv_rotate): the signs, drawn before the ranges so that K's are taken rotated.
    let c = &w.config;
    let kv_rotation = (kv_dtype.quantized() && q.kv_rotate(c))
        .then(|| KvRotation::for_model(c))
        .transpose()
        .map_err(|e| Error::Invalid(format!("quantization.kv_rotate: {e}")))?;
    // What the fp8 default chose, where the config left it out.
    if kv_dtype == crate::quant::kv::KvCacheDtype::Fp8 && q.kv_rotate_by_default() {
        log(&if kv_rotation.is_some() {
            format!(
                "note: kv_cache fp8: K {}rotated before it is rounded (the fp8 default; kv_rotate: false keeps it plain)",
                if q.kv_smooth_k(c) { "centred and " } else { "" }
            )
        } else {
            format!(
                "note: kv_cache fp8: K stays plain: the K rotation needs head_dim a power of two and a multiple of 32 \
                 with at most 31 q heads per kv head (this model: head_dim {}, {} q heads per kv head); \
                 kv_rotate: true asks for it anyway (the cpu and ort backends need head_dim a power of two, \
                 the cuda engine all of the above)",
                c.head_dim,
                c.num_attention_heads / c.num_key_value_heads.max(1)
            )
        });
    }
    // fp8 activation and KV ranges: one pass of the float model (after the smoothing, if any).
    let ranges = match (&data, needs_ranges) {
        (Some(d), true) => Some(collect_ranges(w, &d.windows, &fp8_sites, kv_rotation.as_ref(), log)?),
        _ => None,
    };
    // AWQ (int4_awq; int8 with a calibration section unless `method: rtn`) searches scales and clip
    // ratios; RTN (int4_rtn, int8 without calibration, fp8) rounds.
    let use_awq = q.method == QuantMethod::Awq;
    let mut quantized = match format {
        None => QuantizedModel::default(),
        Some(format) if use_awq => {
            let cal = q.calibration.as_ref().ok_or_else(|| {
                Error::Invalid(format!("{} with AWQ needs a calibration section", q.precision_name()))
            })?;
            let windows = data.as_ref().map(|d| d.windows.as_slice()).unwrap_or(&[]);
            let mut opts = awq::AwqOptions { seed: cal.seed, ..Default::default() };
            if format == WeightFormat::I8 {
                // A whole row per scale: shrinking its absmax below 0.8 never pays off.
                opts.max_shrink = 0.2;
            }
            let (qm, rec) = quantize_awq(w, &params, format, q.pad_to_group, windows, &opts, log)?;
            section.insert("method".into(), "awq".into());
            section.insert("awq".into(), serde_json::to_value(&rec).unwrap_or_default());
            qm
        }
        Some(format) if q.method == QuantMethod::Gptq => {
            // GPTQ: the Gram matrix of every quantized linear's input, on the (smoothed) float model.
            let windows = data.as_ref().map(|d| d.windows.as_slice()).unwrap_or(&[]);
            let seed = q.calibration.as_ref().map_or(0, |c| c.seed);
            let stats = if q.gptq_fp8_inputs {
                // The Gram matrices of the fp8-rounded inputs, with the static scales chosen below.
                let r = ranges.as_ref().ok_or_else(|| Error::Invalid("gptq_fp8_inputs needs calibration".into()))?;
                let mut input_scales = HashMap::new();
                for &p in &act_params {
                    let site = Site::of(p).ok_or_else(|| Error::Invalid(format!("{p:?} has no input site")))?;
                    let h = r.sites.get(&site).ok_or_else(|| Error::Invalid(format!("no range for {site:?}")))?;
                    let range = q.activation_percentile.map_or(h.amax, |pc| h.percentile(pc));
                    input_scales.insert(p, fp8::scale_for_range(range));
                }
                let sites: HashSet<Site> = params.iter().filter_map(|&p| Site::of(p)).collect();
                let c = w.config.clone();
                let arc = Arc::new(std::mem::replace(w, placeholder(&c)));
                let quant = crate::backend::cpu::CpuQuant { input_scales, kv: None, ..Default::default() };
                let st = collect_stats_with(Arc::clone(&arc), windows, &sites, seed, quant, log);
                *w = Arc::try_unwrap(arc).unwrap_or_else(|a| (*a).clone());
                st?
            } else {
                awq_stats(w, &params, windows, seed, log)?
            };
            let t = std::time::Instant::now();
            let mut qm = QuantizedModel::default();
            if format != WeightFormat::F8 {
                return Err(Error::Unsupported(format!("GPTQ is implemented for fp8, not {}", format.name())));
            }
            let mut factors: HashMap<Site, crate::quant::gptq::Factor> = HashMap::new();
            // Activation-aware GPTQ (experiment, TRTFORGE_GPTQ_ACT_AWARE=1): target W C H_q⁻¹, factor of H_q.
            let act_aware = std::env::var("TRTFORGE_GPTQ_ACT_AWARE").is_ok_and(|v| v == "1") && q.fp8_activations;
            let mut transfers: HashMap<Site, Vec<f64>> = HashMap::new();
            // Ridge of the target towards W, relative to H_q's mean diagonal (TRTFORGE_GPTQ_ACT_AWARE_DAMP).
            let aa_damp: f64 = std::env::var("TRTFORGE_GPTQ_ACT_AWARE_DAMP")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(crate::quant::gptq::DAMP);
            if act_aware {
                let r = ranges.as_ref().ok_or_else(|| Error::Invalid("act-aware GPTQ needs calibration".into()))?;
                let mut scales = HashMap::new();
                for &p in &act_params {
                    let site = Site::of(p).ok_or_else(|| Error::Invalid(format!("{p:?} has no input site")))?;
                    let h = r.sites.get(&site).ok_or_else(|| Error::Invalid(format!("no range for {site:?}")))?;
                    let range = q.activation_percentile.map_or(h.amax, |pc| h.percentile(pc));
                    scales.insert(site, fp8::scale_for_range(range).to_f32());
                }
                let c = w.config.clone();
                let arc = Arc::new(std::mem::replace(w, placeholder(&c)));
                let acc = collect_act_aware(Arc::clone(&arc), windows, &scales, seed, log);
                *w = Arc::try_unwrap(arc).unwrap_or_else(|a| (*a).clone());
                for (site, (cross, hq)) in acc? {
                    let n = (hq.len() as f64).sqrt() as usize;
                    factors.insert(site, crate::quant::gptq::factor(&hq, n)?);
                    transfers.insert(site, crate::quant::gptq::act_aware_transfer(&cross, &hq, n, aa_damp)?);
                }
                log(&format!("gptq: activation-aware targets for {} sites", transfers.len()));
            }
            for &p in &params {
                let site = Site::of(p).ok_or_else(|| Error::Invalid(format!("{p:?} has no input site")))?;
                let st = stats.get(&site).ok_or_else(|| Error::Invalid(format!("no statistics for {site:?}")))?;
                if let std::collections::hash_map::Entry::Vacant(e) = factors.entry(site) {
                    e.insert(crate::quant::gptq::factor(&st.gram, st.dim)?);
                }
                let target = match transfers.get(&site) {
                    Some(m) => std::borrow::Cow::Owned(crate::quant::gptq::apply_transfer(w.get(p), m)?),
                    None => std::borrow::Cow::Borrowed(w.get(p)),
                };
                qm.linears.insert(p, crate::quant::gptq::quantize_fp8_with(&target, &factors[&site])?);
            }
            log(&format!("gptq: {} linears in {:.1} s", params.len(), t.elapsed().as_secs_f64()));
            section.insert("method".into(), "gptq".into());
            section.insert(
                "gptq".into(),
                serde_json::json!({
                    "damp": crate::quant::gptq::DAMP,
                    "gram_tokens": stats.values().map(|s| s.gram_rows).max().unwrap_or(0),
                    "order": "input columns in order; row scales = RTN's (row absmax / 448)",
                    "inputs": if q.gptq_fp8_inputs { "fp8-rounded (the engine's static activation scales)" } else { "float" },
                    "activation_aware": !transfers.is_empty(),
                }),
            );
            qm
        }
        Some(format) => {
            if q.calibration.is_some() && !needs_ranges {
                log(&format!("note: {} does not calibrate; the calibration section is ignored", q.precision_name()));
            }
            section.insert("method".into(), "rtn".into());
            rtn::quantize_params(w, &params, format, q.pad_to_group, None)?
        }
    };
    if format == Some(WeightFormat::F8) && q.fp8_activations {
        let r = ranges.as_ref().ok_or_else(|| Error::Invalid("fp8 needs calibration ranges".into()))?;
        let pct = q.activation_percentile;
        let mut rec = serde_json::Map::new();
        for &p in &act_params {
            let site = Site::of(p).ok_or_else(|| Error::Invalid(format!("{p:?} has no input site")))?;
            let first = act_params.iter().find(|&&x| Site::of(x) == Some(site)) == Some(&p);
            let h = r.sites.get(&site).ok_or_else(|| Error::Invalid(format!("no calibration range for {site:?}")))?;
            let range = pct.map_or(h.amax, |p| h.percentile(p));
            let s = fp8::scale_for_range(range);
            quantized.input_scales.insert(p, s);
            if first {
                rec.insert(
                    crate::quant::param_name(p),
                    serde_json::json!({"amax": h.amax, "range": range, "scale": s.to_f32()}),
                );
            }
        }
        section.insert(
            "activation_scales".into(),
            serde_json::json!({
                "method": pct.map_or("amax".to_string(), |p| format!("percentile {p}")),
                "granularity": "per tensor, one per linear input (q/k/v share one, gate/up share one)",
                "scale": "f16(range / 448)",
                "sites": rec,
            }),
        );
    }
    let mut kv_k_mean = None;
    let kv = if kv_dtype.quantized() {
        let k_mean = if q.kv_smooth_k(&w.config) {
            let r = ranges.as_ref().ok_or_else(|| Error::Invalid("kv_smooth_k needs calibration".into()))?;
            Some(r.kv.k_mean())
        } else {
            None
        };
        let scales = match q.kv_scales {
            KvScaleMode::Calibrated => {
                let r =
                    ranges.as_ref().ok_or_else(|| Error::Invalid("calibrated KV scales need calibration".into()))?;
                Some(match &kv_rotation {
                    Some(rot) => r.kv.scales_rotated(kv_dtype, k_mean.as_deref(), rot),
                    None => r.kv.scales(kv_dtype, k_mean.as_deref()),
                })
            }
            KvScaleMode::Dynamic => None,
        };
        let c = &w.config;
        let smooth = k_mean.as_ref().map(|m| {
            let kvd = c.kv_dim();
            let r = ranges.as_ref().map(|r| &r.kv);
            let per_layer_abs = |l: usize| m[l * kvd..(l + 1) * kvd].iter().fold(0.0f32, |a, v| a.max(v.abs()));
            serde_json::json!({
                "file": crate::quant::kv::K_MEAN_FILE,
                "dtype": "float32",
                "shape": [c.num_hidden_layers, c.num_key_value_heads, c.head_dim],
                "layout": "row-major (layer, kv head, channel), little-endian f32, no header; values are f16-exact",
                "statistic": "mean of K after RoPE over every calibration token, per (layer, kv head, channel)",
                "rule": "KV write: k' = k - mean[layer][kv head][d] before scaling and quantizing; the cache holds k' and attention reads dequantized k' with no add-back (softmax over keys ignores q·mean); V is not centred",
                "onnx": "Sub(k, kv_k_mean.{layer}) ([kv_heads·head_dim] in the model dtype) before K's QuantizeLinear",
                "max_abs_mean_per_layer": (0..c.num_hidden_layers).map(per_layer_abs).collect::<Vec<f32>>(),
                "k_amax_plain": r.map(|r| r.k.clone()),
                "k_amax_centred": r.map(|r| r.k_centred_amax(m)),
            })
        });
        kv_k_mean = k_mean;
        let rotate = kv_rotation.as_ref().map(|rot| {
            let r = ranges.as_ref().map(|r| &r.kv);
            serde_json::json!({
                "seed": rot.seed,
                "kind": "randomized Walsh-Hadamard, per layer: R = diag(s) * H / sqrt(head_dim), H the Sylvester Hadamard matrix (H[i][j] = (-1)^popcount(i & j)), s = head_dim signs per layer",
                "signs": "SplitMix64(seed) draws in (layer, channel) order; sign -1 where the draw's top bit is set (src/quant/kv.rs KvRotation)",
                "rule": "KV write: k' = k * R for each kv head's post-RoPE key (after the K mean's subtraction when smooth_k) before scaling and quantizing (scales_k cover k'); the scores use q * R (orthogonal R: (qR).(kR) = q.k). Reference backends store Q(k') * R^T, the same scores with q unrotated. V is not rotated",
                "onnx": "Reshape(k, [0, 0, kv_heads, head_dim]) -> MatMul(kv_rotate.{layer} = R) -> K's QuantizeLinear/DequantizeLinear -> MatMul(kv_unrotate.{layer} = R^T) -> Reshape back, before the cache concat",
                "k_amax_plain": r.map(|r| r.k.clone()),
                "k_amax_rotated": r.map(|r| r.k_rot_amax(None, rot)),
            })
        });
        section.insert(
            "kv_cache".into(),
            serde_json::json!({
                "dtype": kv_dtype.as_str(),
                "scales": q.kv_scales,
                "granularity": match q.kv_scales {
                    KvScaleMode::Calibrated => "per (layer, K|V, kv head), static: amax over the calibration windows / qmax",
                    KvScaleMode::Dynamic => "per (sequence, 16-token block, layer, K|V, kv head): the block's running absmax / qmax",
                },
                "bytes_per_token": crate::quant::kv::bytes_per_token(c.num_hidden_layers, c.num_key_value_heads, c.head_dim, kv_dtype, q.kv_scales, 2),
                "fp16_bytes_per_token": crate::quant::kv::bytes_per_token(c.num_hidden_layers, c.num_key_value_heads, c.head_dim, KvCacheDtype::Fp16, q.kv_scales, 2),
                "onnx": match q.kv_scales {
                    KvScaleMode::Calibrated => "QuantizeLinear → DequantizeLinear (axis 1 = kv head) on each layer's new K and V before the cache concat; initializers kv_scale.{layer}.key|value",
                    KvScaleMode::Dynamic => "not expressible with static Q/DQ: the ONNX keeps an fp16 cache; the CPU reference applies the dynamic scales",
                },
                "scales_k": scales.as_ref().map(|s| s.k.clone()),
                "scales_v": scales.as_ref().map(|s| s.v.clone()),
                "smooth_k": smooth.is_some(),
                "k_mean": smooth,
                "rotate": rotate,
            }),
        );
        Some((kv_dtype, q.kv_scales, scales))
    } else {
        None
    };
    section.insert("quantize_seconds".into(), ((t0.elapsed().as_secs_f64() * 10.0).round() / 10.0).into());
    Ok(Some(QuantOutcome { quantized, kv, kv_k_mean, kv_rotation, section }))
}
