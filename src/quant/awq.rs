//! AWQ: activation-aware weight quantization (Lin et al., 2023), for int4 groups (and int8 rows).
//!
//! Input channels that carry large activations matter more to a layer's output, so AWQ multiplies
//! those weight columns by `s > 1` before rounding (finer relative resolution for them) and divides
//! the activations by `s`, folded into whatever produces them:
//!
//! | site (input of)  | folded into (÷ s)                 | scaled (× s, columns) |
//! |------------------|-----------------------------------|-----------------------|
//! | q, k, v          | attn RMSNorm weight               | q, k, v (one shared s) |
//! | o_proj           | v_proj output rows (per KV head)  | o_proj                |
//! | gate, up         | ffn RMSNorm weight                | gate, up (one shared s) |
//! | down_proj        | up_proj output rows               | down_proj             |
//!
//! so the float model is unchanged (checked by tests/quant.rs). Per site, `s = x̄^α` with x̄ the mean
//! |activation| per channel over the calibration tokens, normalised to √(max·min) = 1, and α is picked
//! from a grid of [`AwqOptions::grid`] values in [0, 1) by the smallest output error
//! `‖X (Ŵ − W)ᵀ‖²` summed over the site's linears (α = 0 is plain RTN, so AWQ never loses on this
//! objective). The error uses the calibration Gram matrix `XᵀX` (see stats.rs). Then, as AWQ's
//! auto-clip, each (output channel, group) picks an absmax shrink ratio in [1 − max_shrink, 1]
//! minimising the output error, by coordinate descent over a row's groups with the cross-group terms
//! of `XᵀX` (AWQ scores each group alone). Unlike AWQ, q/k are clipped too: on SmolLM2 that lowered the
//! int4 g128 perplexity increase from +24.7 % to +21.1 %, and a 0.025 clip step (AWQ: 0.05) to +18.7 %
//! (docs/quantization.md). Everything is deterministic for a given seed.
use super::rtn::{fake_quant_block, quantize_params};
use super::stats::{Site, SiteStats};
use super::{check_applicable, param_name, QuantizedModel, WeightFormat};
use crate::error::{Error, Result};
use crate::model::{LlamaConfig, ModelWeights, Param, Tensor};
use crate::util::SplitMix64;
use ndarray::ArrayView2;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Instant;

/// Activations below this mean |x| are treated as this (AWQ's clamp): avoids zero scales.
const MIN_ACT: f32 = 1e-4;
/// Above `out · in²` multiply-adds per pass, the clip search treats H as block-diagonal.
const CLIP_CROSS_MACS: usize = 2_000_000_000;

#[derive(Debug, Clone)]
pub struct AwqOptions {
    /// α candidates: i / grid for i in 0..grid.
    pub grid: usize,
    /// Search a clip ratio per (output channel, group).
    pub clip: bool,
    /// Clip ratios 1 − i / clip_grid for i in 0..max_shrink · clip_grid.
    pub clip_grid: usize,
    pub max_shrink: f32,
    /// Clip-search q and k too (AWQ leaves them, as their error passes through the softmax; measured
    /// better here).
    pub clip_qk: bool,
    /// Coordinate-descent passes over a row's groups in the clip search.
    pub clip_sweeps: usize,
    /// The clip search runs for this many of the best α (by unclipped error); the best final error wins.
    pub clip_alphas: usize,
    /// Seeds the Gram-row subsample and the output rows scored for large layers.
    pub seed: u64,
    /// Multiply-adds one α candidate may spend per linear (≈ rows × in²); larger layers are scored on a
    /// seeded subset of their output rows.
    pub objective_macs: usize,
}

impl Default for AwqOptions {
    fn default() -> Self {
        AwqOptions {
            grid: 20,
            clip: true,
            clip_grid: 40,
            max_shrink: 0.5,
            clip_qk: true,
            clip_sweeps: 2,
            clip_alphas: 1,
            seed: 0,
            objective_macs: 1_500_000_000,
        }
    }
}

/// One site's search result, for the manifest. Errors are mean squared output errors per token,
/// summed over the site's linears.
#[derive(Debug, Clone, Serialize)]
pub struct SiteRecord {
    pub layer: Option<usize>,
    pub site: &'static str,
    pub alpha: f64,
    /// Plain round-to-nearest (α = 0, no clipping).
    pub err_rtn: f64,
    /// With the chosen scales.
    pub err_scaled: f64,
    /// With the chosen scales and clip ratios (what the engine holds).
    pub err_final: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AwqRecord {
    pub alpha_grid: usize,
    pub clip_search: bool,
    pub clip_ratios: Vec<f64>,
    /// Calibration tokens behind the mean |x| statistics, and behind the Gram matrices.
    pub stat_tokens: usize,
    pub gram_tokens: usize,
    /// Σ over sites of err_rtn and err_final.
    pub objective_rtn: f64,
    pub objective_awq: f64,
    pub calibration_seconds: f64,
    pub search_seconds: f64,
    pub sites: Vec<SiteRecord>,
}

/// The linears reading a site's input, in graph order.
pub fn site_linears(site: Site) -> Vec<Param> {
    match site {
        Site::AttnIn(l) => vec![Param::Wq(l), Param::Wk(l), Param::Wv(l)],
        Site::AttnOut(l) => vec![Param::Wo(l)],
        Site::MlpIn(l) => vec![Param::WGate(l), Param::WUp(l)],
        Site::MlpOut(l) => vec![Param::WDown(l)],
        Site::HeadIn => vec![Param::LmHead],
    }
}

/// Per-channel scales of a site for exponent `alpha`: `s = max(x̄, MIN_ACT)^α / √(max · min)`.
/// For o_proj the scale is folded into v_proj's rows, so with grouped-query attention it must be the
/// same for all query heads that read one KV head: x̄ is averaged over them and `s` expanded back.
pub fn site_scales(site: Site, xm: &[f32], alpha: f32, c: &LlamaConfig) -> Vec<f32> {
    let base = match site {
        Site::AttnOut(_) => kv_mean(xm, c),
        _ => xm.to_vec(),
    };
    let mut s: Vec<f32> = base.iter().map(|&x| x.max(MIN_ACT).powf(alpha)).collect();
    let (mx, mn) = s.iter().fold((0.0f32, f32::INFINITY), |(a, b), &v| (a.max(v), b.min(v)));
    let norm = (mx * mn).sqrt();
    if norm > 0.0 && norm.is_finite() {
        s.iter_mut().for_each(|v| *v /= norm);
    }
    match site {
        Site::AttnOut(_) => kv_expand(&s, c),
        _ => s,
    }
}

/// (q_dim) → (kv_dim): mean over the query heads sharing each KV head.
fn kv_mean(x: &[f32], c: &LlamaConfig) -> Vec<f32> {
    let (hd, group) = (c.head_dim, c.num_attention_heads / c.num_key_value_heads);
    (0..c.kv_dim())
        .map(|j| {
            let (kvh, d) = (j / hd, j % hd);
            (kvh * group..(kvh + 1) * group).map(|h| x[h * hd + d]).sum::<f32>() / group as f32
        })
        .collect()
}

/// (kv_dim) → (q_dim): each query head takes its KV head's values.
fn kv_expand(s: &[f32], c: &LlamaConfig) -> Vec<f32> {
    let (hd, group) = (c.head_dim, c.num_attention_heads / c.num_key_value_heads);
    (0..c.q_dim()).map(|k| s[(k / hd / group) * hd + k % hd]).collect()
}

/// Folds a site's scales into the model (see the table above): exact in real arithmetic.
pub fn fold_scales(w: &mut ModelWeights, site: Site, s: &[f32]) -> Result<()> {
    let c = w.config.clone();
    let d = w.get(site_linears(site)[0]).cols();
    if s.len() != d {
        return Err(Error::Invalid(format!("{site:?}: {} scales for an input of {d}", s.len())));
    }
    let div_vec = |t: &mut Tensor| t.data.iter_mut().zip(s).for_each(|(v, s)| *v /= s);
    let div_rows = |t: &mut Tensor, s: &[f32]| {
        let cols = t.cols();
        t.data.chunks_mut(cols).zip(s).for_each(|(row, s)| row.iter_mut().for_each(|v| *v /= s));
    };
    match site {
        Site::AttnIn(l) => div_vec(w.get_mut(Param::AttnNorm(l))),
        Site::MlpIn(l) => div_vec(w.get_mut(Param::FfnNorm(l))),
        Site::AttnOut(l) => {
            // v_proj row j feeds attention output channel k of every head in its KV group.
            let group = c.num_attention_heads / c.num_key_value_heads;
            let hd = c.head_dim;
            let sv: Vec<f32> = (0..c.kv_dim()).map(|j| s[(j / hd) * group * hd + j % hd]).collect();
            div_rows(w.get_mut(Param::Wv(l)), &sv);
        }
        Site::MlpOut(l) => div_rows(w.get_mut(Param::WUp(l)), s),
        Site::HeadIn => {
            if w.lm_head.is_none() {
                return Err(Error::Unsupported(
                    "AWQ cannot scale a tied LM head: its columns are the embedding table's".into(),
                ));
            }
            div_vec(w.get_mut(Param::FinalNorm))
        }
    }
    for p in site_linears(site) {
        let t = w.get_mut(p);
        let cols = t.cols();
        t.data.chunks_mut(cols).for_each(|row| row.iter_mut().zip(s).for_each(|(v, s)| *v *= s));
    }
    Ok(())
}

/// A scored (final error, α index, scales, clip ratios per linear) choice for one site.
type Candidate = (f64, usize, Vec<f32>, Vec<(Param, Vec<f32>)>);

/// One linear as scored by the objective: the output rows used and their weight (out / rows).
struct Target<'a> {
    w: &'a Tensor,
    rows: Vec<usize>,
    weight: f64,
    /// (out, n_blocks) clip ratios, when scoring the final result.
    clip: Option<&'a [f32]>,
}

/// `Σ_rows weight · Δ H Δᵀ`, `Δ = fq(W ∘ s) / s − W` per row: the site's output error per token.
/// h (d, d) is the Gram matrix divided by its token count.
fn site_error(targets: &[Target], h: &[f32], d: usize, s: &[f32], format: WeightFormat) -> f64 {
    let m: usize = targets.iter().map(|t| t.rows.len()).sum();
    let bl = format.block_len(d);
    let nb = d.div_ceil(bl);
    let (qmin, qmax) = (format.qmin(), format.qmax());
    let mut delta = vec![0.0f32; m * d]; // (m, d)
    let mut weights = Vec::with_capacity(m);
    let mut scaled = vec![0.0f32; d];
    let mut fq = vec![0.0f32; bl];
    let mut i = 0;
    for t in targets {
        for &n in &t.rows {
            let row = t.w.row(n);
            for ((o, w), s) in scaled.iter_mut().zip(row).zip(s) {
                *o = w * s;
            }
            for b in 0..nb {
                let (r0, r1) = (b * bl, ((b + 1) * bl).min(d));
                let r = t.clip.map_or(1.0, |c| c[n * nb + b]);
                fake_quant_block(&scaled[r0..r1], r, qmin, qmax, &mut fq[..r1 - r0]);
                for k in r0..r1 {
                    delta[i * d + k] = fq[k - r0] / s[k] - row[k];
                }
            }
            weights.push(t.weight);
            i += 1;
        }
    }
    let (Ok(da), Ok(ha)) = (ArrayView2::from_shape((m, d), &delta), ArrayView2::from_shape((d, d), h)) else {
        return f64::INFINITY;
    };
    let e = da.dot(&ha); // (m, d)
    e.outer_iter()
        .zip(da.outer_iter())
        .zip(&weights)
        .map(|((er, dr), wt)| wt * er.iter().zip(dr.iter()).map(|(a, b)| (a * b) as f64).sum::<f64>())
        .sum()
}

/// Output rows scored for a linear of `out` rows and `d` inputs within the multiply-add budget.
fn scored_rows(out: usize, d: usize, opts: &AwqOptions, rng: &mut SplitMix64) -> Vec<usize> {
    let cap = (opts.objective_macs / (d * d).max(1)).max(64);
    if out <= cap {
        return (0..out).collect();
    }
    let mut all: Vec<usize> = (0..out).collect();
    for i in 0..cap {
        let j = i + (rng.next_u64() % (out - i) as u64) as usize;
        all.swap(i, j);
    }
    let mut v = all[..cap].to_vec();
    v.sort_unstable();
    v
}

/// Per (output row, block) clip ratio minimising the row's output error `δ H δᵀ`,
/// `δ = fq(w ∘ s, r) / s − w`, by coordinate descent over the row's blocks from r = 1: each block takes
/// the ratio that lowers the error most given the other blocks' current error, for `sweeps` passes.
/// Never worse than r = 1 on this objective. Cross-block terms of H are included when the layer is
/// small enough (`out · in²` within [`CLIP_CROSS_MACS`]); otherwise H is treated as block-diagonal,
/// as AWQ's per-group clip search does.
fn search_clip(w: &Tensor, h: &[f32], s: &[f32], format: WeightFormat, ratios: &[f32], sweeps: usize) -> Vec<f32> {
    let (out, d) = (w.rows(), w.cols());
    let cross = out * d * d <= CLIP_CROSS_MACS;
    let bl = format.block_len(d);
    let nb = d.div_ceil(bl);
    let (qmin, qmax) = (format.qmin(), format.qmax());
    // Diagonal blocks of H, each (len, len) contiguous.
    let blocks: Vec<Vec<f32>> = (0..nb)
        .map(|b| {
            let (r0, r1) = (b * bl, ((b + 1) * bl).min(d));
            let mut m = Vec::with_capacity((r1 - r0) * (r1 - r0));
            for i in r0..r1 {
                m.extend_from_slice(&h[i * d + r0..i * d + r1]);
            }
            m
        })
        .collect();
    (0..out)
        .into_par_iter()
        .flat_map_iter(|n| {
            let row = w.row(n);
            let scaled: Vec<f32> = row.iter().zip(s).map(|(w, s)| w * s).collect(); // (d)
            let mut fq = vec![0.0f32; bl];
            // The block's error for ratio r, written into `out`.
            let block_delta = |b: usize, r: f32, fq: &mut [f32], out: &mut [f32]| {
                let (r0, r1) = (b * bl, ((b + 1) * bl).min(d));
                fake_quant_block(&scaled[r0..r1], r, qmin, qmax, &mut fq[..r1 - r0]);
                for k in r0..r1 {
                    out[k - r0] = fq[k - r0] / s[k] - row[k];
                }
            };
            let mut clip = vec![1.0f32; nb];
            let mut delta = vec![0.0f32; d]; // (d)
            for b in 0..nb {
                let (r0, r1) = (b * bl, ((b + 1) * bl).min(d));
                block_delta(b, 1.0, &mut fq, &mut delta[r0..r1]);
            }
            // H δ (d): the full product, or only each block's own part when H is taken block-diagonal.
            let mut g: Vec<f32> = if cross {
                (0..d).map(|i| dot(&h[i * d..(i + 1) * d], &delta)).collect()
            } else {
                let mut g = vec![0.0f32; d];
                for (b, hb) in blocks.iter().enumerate() {
                    let (r0, r1) = (b * bl, ((b + 1) * bl).min(d));
                    let len = r1 - r0;
                    for i in 0..len {
                        g[r0 + i] = dot(&hb[i * len..(i + 1) * len], &delta[r0..r1]);
                    }
                }
                g
            };
            let mut cand = vec![0.0f32; bl];
            let mut diff = vec![0.0f32; bl];
            for _ in 0..sweeps {
                for b in 0..nb {
                    let (r0, r1) = (b * bl, ((b + 1) * bl).min(d));
                    let len = r1 - r0;
                    let hb = &blocks[b];
                    // Error change of replacing δ_b by δ_b + Δ: 2 Δ·(Hδ)_b + Δᵀ H_bb Δ.
                    let mut best = (0.0f64, clip[b]);
                    for &r in ratios {
                        if r == clip[b] {
                            continue;
                        }
                        block_delta(b, r, &mut fq, &mut cand);
                        for k in 0..len {
                            diff[k] = cand[k] - delta[r0 + k];
                        }
                        let lin: f64 = (0..len).map(|k| diff[k] as f64 * g[r0 + k] as f64).sum();
                        let quad: f64 = (0..len)
                            .map(|i| diff[i] as f64 * dot(&hb[i * len..(i + 1) * len], &diff[..len]) as f64)
                            .sum();
                        let change = 2.0 * lin + quad;
                        if change < best.0 {
                            best = (change, r);
                        }
                    }
                    if best.1 != clip[b] {
                        block_delta(b, best.1, &mut fq, &mut cand);
                        for k in 0..len {
                            diff[k] = cand[k] - delta[r0 + k];
                            delta[r0 + k] = cand[k];
                        }
                        // g += H[:, b] Δ, using the rows of b (H is symmetric); only block b's part
                        // when H is taken block-diagonal.
                        for k in 0..len {
                            let dk = diff[k];
                            if dk == 0.0 {
                                continue;
                            }
                            if cross {
                                for (gi, hv) in g.iter_mut().zip(&h[(r0 + k) * d..(r0 + k + 1) * d]) {
                                    *gi += hv * dk;
                                }
                            } else {
                                for (gi, hv) in g[r0..r1].iter_mut().zip(&hb[k * len..(k + 1) * len]) {
                                    *gi += hv * dk;
                                }
                            }
                        }
                        clip[b] = best.1;
                    }
                }
            }
            clip
        })
        .collect()
}

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const L: usize = 16;
    let mut acc = [0.0f32; L];
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..L {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// AWQ from activation statistics collected on the same weights (by `convert::calibrate`): searches
/// scales (and clip ratios) per site, folds the scales into `w` and quantizes `params` of the folded model.
pub fn quantize_awq_with_stats(
    w: &mut ModelWeights,
    params: &[Param],
    format: WeightFormat,
    pad_to_group: bool,
    stats: &HashMap<Site, SiteStats>,
    opts: &AwqOptions,
    log: &mut dyn FnMut(&str),
) -> Result<(QuantizedModel, AwqRecord)> {
    check_applicable(w, params, format, pad_to_group)?;
    if opts.grid == 0 {
        return Err(Error::Invalid("AWQ needs an α grid of at least one point".into()));
    }
    let plan: HashSet<Param> = params.iter().copied().collect();
    let sites: BTreeSet<Site> = params.iter().filter_map(|&p| Site::of(p)).collect();
    if let Some(s) = sites.iter().find(|s| !stats.contains_key(s)) {
        return Err(Error::Invalid(format!("AWQ: no calibration statistics for {s:?}")));
    }
    let c = w.config.clone();

    // Per layer: α search and clip search on the original weights, then fold.
    let t1 = Instant::now();
    let ratios: Vec<f64> = if opts.clip {
        (0..((opts.max_shrink * opts.clip_grid as f32).round() as usize).max(1))
            .map(|i| 1.0 - i as f64 / opts.clip_grid as f64)
            .collect()
    } else {
        vec![1.0]
    };
    let ratios_f32: Vec<f32> = ratios.iter().map(|&r| r as f32).collect();
    let mut rng = SplitMix64(opts.seed ^ 0xA3C5_0B7E_0000_0002);
    let mut clips: HashMap<Param, Vec<f32>> = HashMap::new();
    let mut records = Vec::new();
    let layers: Vec<Option<usize>> = {
        let mut v: Vec<Option<usize>> = (0..c.num_hidden_layers).map(Some).collect();
        v.push(None);
        v
    };
    let site_layer = |s: Site| match s {
        Site::AttnIn(l) | Site::AttnOut(l) | Site::MlpIn(l) | Site::MlpOut(l) => Some(l),
        Site::HeadIn => None,
    };
    for layer in layers {
        let here: Vec<Site> = sites.iter().copied().filter(|&s| site_layer(s) == layer).collect();
        if here.is_empty() {
            continue;
        }
        let tl = Instant::now();
        let mut folds = Vec::new();
        for &site in &here {
            let st: &SiteStats = &stats[&site];
            let d = st.dim;
            let norm = 1.0 / st.gram_rows.max(1) as f32;
            let h: Vec<f32> = st.gram.iter().map(|v| v * norm).collect(); // (d, d)
            let xm = st.abs_mean();
            let lin: Vec<Param> = site_linears(site).into_iter().filter(|p| plan.contains(p)).collect();
            let targets: Vec<Target> = lin
                .iter()
                .map(|&p| {
                    let t = w.get(p);
                    let rows = scored_rows(t.rows(), d, opts, &mut rng);
                    let weight = t.rows() as f64 / rows.len() as f64;
                    Target { w: t, rows, weight, clip: None }
                })
                .collect();
            let errs: Vec<f64> = (0..opts.grid)
                .into_par_iter()
                .map(|i| {
                    let s = site_scales(site, &xm, i as f32 / opts.grid as f32, &c);
                    site_error(&targets, &h, d, &s, format)
                })
                .collect();
            let mut order: Vec<usize> = (0..errs.len()).collect();
            order.sort_by(|&a, &b| errs[a].total_cmp(&errs[b]).then(a.cmp(&b)));
            // Clip search for the best α candidates, scored with their scales; the lowest final error wins.
            let mut chosen: Option<Candidate> = None;
            let n_alpha = if opts.clip { opts.clip_alphas.max(1) } else { 1 };
            for &ai in order.iter().take(n_alpha) {
                let s = site_scales(site, &xm, ai as f32 / opts.grid as f32, &c);
                let mut site_clips: Vec<(Param, Vec<f32>)> = Vec::new();
                if opts.clip {
                    for &p in &lin {
                        if matches!(p, Param::Wq(_) | Param::Wk(_)) && !opts.clip_qk {
                            continue;
                        }
                        site_clips.push((p, search_clip(w.get(p), &h, &s, format, &ratios_f32, opts.clip_sweeps)));
                    }
                }
                let final_targets: Vec<Target> = targets
                    .iter()
                    .zip(&lin)
                    .map(|(t, p)| Target {
                        w: t.w,
                        rows: t.rows.clone(),
                        weight: t.weight,
                        clip: site_clips.iter().find(|(q, _)| q == p).map(|(_, c)| c.as_slice()),
                    })
                    .collect();
                let e = if opts.clip { site_error(&final_targets, &h, d, &s, format) } else { errs[ai] };
                if chosen.as_ref().is_none_or(|c| e < c.0) {
                    chosen = Some((e, ai, s, site_clips));
                }
            }
            let Some((err_final, best, s, site_clips)) = chosen else { continue };
            if !errs.iter().all(|e| e.is_finite()) || !err_final.is_finite() {
                return Err(Error::Invalid(format!(
                    "AWQ: non-finite output error at {} (layer {layer:?}); the calibration activations overflow",
                    site.name()
                )));
            }
            records.push(SiteRecord {
                layer,
                site: site.name(),
                alpha: best as f64 / opts.grid as f64,
                err_rtn: errs[0],
                err_scaled: errs[best],
                err_final,
            });
            clips.extend(site_clips);
            folds.push((site, s));
        }
        for (site, s) in folds {
            fold_scales(w, site, &s)?;
        }
        let recs = &records[records.len() - here.len()..];
        let (r, f) = recs.iter().fold((0.0, 0.0), |(a, b), x| (a + x.err_rtn, b + x.err_final));
        let alphas: Vec<String> = recs.iter().map(|x| format!("{} {:.2}", x.site, x.alpha)).collect();
        log(&format!(
            "awq {}: α {}; output error {:.1} % of RTN ({:.1} s)",
            layer.map_or("lm_head".to_string(), |l| format!("layer {}/{}", l + 1, c.num_hidden_layers)),
            alphas.join(", "),
            100.0 * f / r.max(f64::MIN_POSITIVE),
            tl.elapsed().as_secs_f64()
        ));
    }
    let search_seconds = t1.elapsed().as_secs_f64();
    for (p, cl) in &clips {
        if cl.iter().any(|r| !(r.is_finite() && *r > 0.0 && *r <= 1.0)) {
            return Err(Error::Invalid(format!("AWQ: bad clip ratio for {}", param_name(*p))));
        }
    }

    // Quantize the folded model.
    let qm = quantize_params(w, params, format, pad_to_group, Some(&clips))?;
    let any = stats.values().next();
    let record = AwqRecord {
        alpha_grid: opts.grid,
        clip_search: opts.clip,
        clip_ratios: ratios,
        stat_tokens: any.map_or(0, |s| s.rows),
        gram_tokens: any.map_or(0, |s| s.gram_rows),
        objective_rtn: records.iter().map(|r| r.err_rtn).sum(),
        objective_awq: records.iter().map(|r| r.err_final).sum(),
        calibration_seconds: 0.0,
        search_seconds: (search_seconds * 10.0).round() / 10.0,
        sites: records,
    };
    Ok((qm, record))
}
