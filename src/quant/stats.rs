//! Activation statistics of the linear layers' inputs, the data AWQ consumes. Collecting them (a
//! pass of the CPU reference over calibration windows) is the convert stage's job
//! (`convert::calibrate`); this module only holds and accumulates them.
//!
//! Statistics per input site (the input shared by q/k/v, o_proj's, gate/up's, down_proj's):
//! the mean |x| of every channel over all calibration tokens, and the Gram matrix `XᵀX` over a seeded
//! subsample of at most [`GRAM_ROWS`] tokens, so a layer's output error `‖X ΔWᵀ‖²` is
//! `Σ_o Δw_o · G · Δw_oᵀ` without keeping activations.
use crate::model::Param;
use ndarray::{linalg::general_mat_mul, s, ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

/// Calibration tokens whose activations enter the Gram matrices (a seeded subsample beyond this).
pub const GRAM_ROWS: usize = 4096;
/// Columns per task when accumulating a Gram matrix.
const GRAM_BLOCK: usize = 64;

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
    pub fn first(self) -> Param {
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
    pub fn new(dim: usize) -> Self {
        SiteStats { dim, rows: 0, abs_sum: vec![0.0; dim], gram: vec![0.0; dim * dim], gram_rows: 0 }
    }

    /// Mean |x| per channel. (dim)
    pub fn abs_mean(&self) -> Vec<f32> {
        self.abs_sum.iter().map(|s| (s / self.rows.max(1) as f64) as f32).collect()
    }

    /// Adds the rows of `x` (tokens, dim) to the means and the rows `sel` to the Gram matrix.
    pub fn update(&mut self, x: &[f32], sel: &[usize]) {
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
    pub fn finish(&mut self) {
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
