//! SmoothQuant-style migration of activation outliers into the weights (Xiao et al., 2023), applied
//! before fp8 activations get their per-tensor scales: each input channel j of a site is divided by
//! `s_j = max|x_j|^α / max|W_·j|^(1−α)` and the weights' column j multiplied by it. The division is
//! folded into the op before the site ([`super::awq::fold_scales`]: the RMSNorm weight, v_proj's rows
//! for o_proj, up_proj's rows for down_proj), so the float model is unchanged in real arithmetic;
//! only the ranges the quantizers see move. Pure: per-channel activation absmax in, scales out.
use super::awq::site_linears;
use super::stats::Site;
use crate::model::{LlamaConfig, ModelWeights};

/// Floor of an activation or weight absmax in the formula (keeps dead channels finite).
const MIN_AMAX: f32 = 1e-5;

/// Per-channel absmax over the columns of every linear reading `site`: `max_o |W[o][j]|`.
pub fn weight_col_amax(w: &ModelWeights, site: Site) -> Vec<f32> {
    let mut m: Vec<f32> = Vec::new();
    for p in site_linears(site) {
        let t = w.get(p);
        let cols = t.cols();
        if m.is_empty() {
            m = vec![0.0; cols];
        }
        for row in t.data.chunks(cols) {
            m.iter_mut().zip(row).for_each(|(a, v)| *a = a.max(v.abs()));
        }
    }
    m
}

/// The SmoothQuant scales of one site from its per-channel activation absmax `act` (dim channels).
/// For o_proj (folded into v_proj's rows) the scale must be equal for the query heads that share a
/// KV head, so both maxima are taken over those heads first and the scale expanded back.
pub fn site_scales(w: &ModelWeights, site: Site, act: &[f32], alpha: f32) -> Vec<f32> {
    let wm = weight_col_amax(w, site);
    let c = &w.config;
    let (a, wm) = match site {
        Site::AttnOut(_) => (kv_max(act, c), kv_max(&wm, c)),
        _ => (act.to_vec(), wm),
    };
    let s: Vec<f32> = a
        .iter()
        .zip(&wm)
        .map(|(&x, &y)| {
            let s = x.max(MIN_AMAX).powf(alpha) / y.max(MIN_AMAX).powf(1.0 - alpha);
            if s.is_finite() && s > 0.0 {
                s
            } else {
                1.0
            }
        })
        .collect();
    match site {
        Site::AttnOut(_) => kv_expand(&s, c),
        _ => s,
    }
}

/// (q_dim) → (kv_dim): max over the query heads sharing each KV head.
fn kv_max(x: &[f32], c: &LlamaConfig) -> Vec<f32> {
    let (hd, group) = (c.head_dim, c.num_attention_heads / c.num_key_value_heads);
    (0..c.kv_dim())
        .map(|j| {
            let (kvh, d) = (j / hd, j % hd);
            (kvh * group..(kvh + 1) * group).map(|h| x[h * hd + d]).fold(0.0f32, f32::max)
        })
        .collect()
}

/// (kv_dim) → (q_dim): each query head takes its KV head's values.
fn kv_expand(s: &[f32], c: &LlamaConfig) -> Vec<f32> {
    let (hd, group) = (c.head_dim, c.num_attention_heads / c.num_key_value_heads);
    (0..c.q_dim()).map(|k| s[(k / hd / group) * hd + k % hd]).collect()
}
