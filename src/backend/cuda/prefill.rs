//! Prefill switches and the per-kernel prefill profile (session 6, branch ttft, issue #11 TTFT).
//!
//! - [`PrefillOpts`]: which session-6 kernels the GEMM path (prefill and decode passes above
//!   `GEMV_MAX_T` rows) and the prefill attention run; each has an environment switch so that one
//!   GPU call can A/B them (docs/cuda.md, "session 6, branch ttft").
//! - [`FineProf`]: CUDA events around every launch of a pass, read after one synchronization at
//!   the end (no synchronization between kernels, unlike the step profile), so the sum of the
//!   kernels' times against the pass's span shows how long the GPU idled between launches.

use super::gpu::{Gpu, GpuTimer};
use super::kernels::{KernelSpec, Role};
use crate::error::Result;

/// Session-6 prefill kernel choices.
#[derive(Clone, Copy, Debug, Default)]
pub struct PrefillOpts {
    /// Prefill attention by `attn_prefill_fa` (K/V tiles of 64 keys shared by a block's 4 warps)
    /// instead of `attn_prefill_tc` (`TRTFORGE_PREFILL_FA=1|0`).
    pub fa: bool,
    /// Vectorized GEMM-path elementwise kernels: `rmsnorm_v`, `swiglu_v`/`_hv`, and
    /// `rope_append_p`/`_hp` (no act copy of q) where the prefill attention reads q as f32
    /// (`TRTFORGE_PREFILL_EW=1|0`).
    pub ew: bool,
    /// qkv and gate/up GEMMs write f16 (cublasGemmEx or cuBLASLt), read by the f16 epilogues, and
    /// the GEMV paths round those sums to f16 too (`c_y16`) (`TRTFORGE_PREFILL_F16Y=1|0`).
    pub f16y: bool,
    /// Prefill passes of a shape seen before replay a CUDA graph (`TRTFORGE_PREFILL_GRAPH=1|0`).
    pub graph: bool,
    /// Session 7: the GEMMs of non-decode passes through cuBLASLt, the algorithm (split-K variants
    /// included) timed per shape at first use (`gpu::Lt`; `TRTFORGE_PREFILL_LT=1|0`; decode passes
    /// keep cublasGemmEx unless `TRTFORGE_GEMM=lt`).
    pub lt: bool,
    /// Session 8: prefill attention by `attn_prefill_fg` (one block per 16 queries × kv head, a warp
    /// per query head of the GQA group, K/V tiles staged once for the group) where `fa` applies
    /// (`TRTFORGE_PREFILL_FG=1|0`).
    pub fg: bool,
    /// Session 9: the GEMM path's RMSNorm by `rmsnorm_b` (one row per block, weight loaded before the
    /// PDL wait) instead of `rmsnorm_v`, where `ew` applies and the kernel is compiled
    /// (`TRTFORGE_PREFILL_RMSB=1|0`).
    pub rmsb: bool,
}

/// What a captured prefill pass depends on besides the metadata block: rows, pieces, longest
/// piece, selected rows and whether every row is selected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PassKey {
    pub rows: usize,
    pub nseq: usize,
    pub max_n: usize,
    pub nsel: usize,
    pub all: bool,
}

/// Prefill pass shapes with a graph (or a count) at most.
pub const MAX_PASS_GRAPHS: usize = 64;

/// Defaults where the environment says nothing (measured on the H200, 2026-11-30 18:12 UTC, one
/// engine: TTFT(512) fp16 bs1 3.165 ms with all four off → 2.476 ms with all four on; bs64 decode
/// 38.8k → 41.6k tok/s with fa/ew/f16y on; docs/cuda.md, "session 6, branch ttft"). `f16y` is
/// default in static engines only: the paged engine's mixed passes carry decode rows, and the
/// TinyLlama-shape paged checks have not run with it (session 4 saw a greedy divergence there
/// with f16 GEMM outputs); `TRTFORGE_PREFILL_F16Y=1` turns it on there too.
/// Final lease of session 6 (19:05–19:15 UTC): `f16y` is **off by default**. With it on in static
/// engines only, `TRTFORGE_CHECKS=bs1q` failed "tiny32 fp8 KV fp8 paged: greedy alone == static
/// engine" (prefix 13 of 24 for one prompt: static and paged engines then round the prefill
/// differently); with it forced on in both, "prefill in chunks of 5 == one-shot" failed the same
/// way (5-row chunks take the GEMV path, f32 accumulators); off: 26/26. It is worth ≈ 0.07 ms of
/// TTFT(512) (2.56 → 2.63 ms in that lease).
const DEFAULT_FA: bool = true;
const DEFAULT_EW: bool = true;
/// Session 7 (branch ttft7): `f16y` on by default again, in every engine and every GEMM-path pass
/// (decode passes above `GEMV_MAX_T` rows too), with the GEMV paths rounding their qkv / gate-up sums
/// to f16 at the same point (`c_y16` in kernels.cu): the failures above came from two paths rounding
/// at different points (f16-rounded GEMM outputs vs f32 GEMV sums, then an 8-bit KV code flip), not
/// from the f16 outputs themselves. `TRTFORGE_PREFILL_F16Y=0` turns both off. Measured in the same
/// call (2026-11-30 20:37 UTC): bs1q 26/26, attn 15/15, prefill 9/9; TTFT(512) 2.578 → 2.500 ms (one
/// engine), bs64 decode 39,579 → 40,031 tok/s, bs64 TTFT 143.1 → 137.1 ms.
const DEFAULT_F16Y: bool = true;
const DEFAULT_GRAPH: bool = true;
/// Session 7: −0.014 / −0.04 ms of TTFT(512) in two calls (inside the run-to-run spread), its checks
/// not run: opt-in.
const DEFAULT_LT: bool = false;
/// Session 8 (branch ttft8): `attn_prefill_fg` by default where `fa` runs (`TRTFORGE_PREFILL_FG=0`
/// runs `attn_prefill_fa`). Measured in one call (H200, 2026-12-01 02:17 UTC): with the switch on,
/// `TRTFORGE_CHECKS=attn` 15/15 and `TRTFORGE_CHECKS=prefill --tinyllama` 9/9; TTFT(512) fp16 bs1
/// 2.48 (fa) → 2.46 ms (fg) in separate processes (fa again 2.48), 2.475 → 2.452 and 2.492 → 2.477
/// ms alternating in one process; the attention's kernel time 488.6 → 463.8 µs (−5 %) per 5 passes.
const DEFAULT_FG: bool = true;
/// Session 9: `rmsnorm_b` by default (`TRTFORGE_PREFILL_RMSB=0` runs `rmsnorm_v`). Measured in one
/// call (H200, 2026-12-01 02:44 UTC, docs/benchmarks/2026-12-01-h200-session9): fp16 bs64 decode
/// 43,823 → 46,680 tok/s (1.460 → 1.371 ms/step) in separate processes; TTFT(512) fp16 bs1 2.433 →
/// 2.372 and 2.423 → 2.362 ms (with `fg`, alternating in one process; rmsnorm 292 → 243 µs per pass);
/// `TRTFORGE_CHECKS=prefill --tinyllama` 9/9 with it on.
const DEFAULT_RMSB: bool = true;

fn env_flag(name: &str, default: bool) -> bool {
    match std::env::var(name).as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => default,
    }
}

impl PrefillOpts {
    /// From the environment (defaults above), limited to what the engine supports ([`Self::supported`]).
    pub fn from_env(spec: &KernelSpec, prefill_flash: bool, paged: bool) -> PrefillOpts {
        PrefillOpts {
            fa: env_flag("TRTFORGE_PREFILL_FA", DEFAULT_FA),
            ew: env_flag("TRTFORGE_PREFILL_EW", DEFAULT_EW),
            f16y: env_flag("TRTFORGE_PREFILL_F16Y", DEFAULT_F16Y),
            graph: env_flag("TRTFORGE_PREFILL_GRAPH", DEFAULT_GRAPH),
            lt: env_flag("TRTFORGE_PREFILL_LT", DEFAULT_LT),
            fg: env_flag("TRTFORGE_PREFILL_FG", DEFAULT_FG),
            rmsb: env_flag("TRTFORGE_PREFILL_RMSB", DEFAULT_RMSB),
        }
        .supported(spec, prefill_flash, paged)
    }

    /// Each switch only where the engine supports it: `fa` where `attn_prefill_fa` is compiled and
    /// the prefill attention is the flash kernel at all (`prefill_flash`); `ew` / `f16y` with f16
    /// activations (static and paged engines alike since session 7).
    pub fn supported(self, spec: &KernelSpec, prefill_flash: bool, _paged: bool) -> PrefillOpts {
        PrefillOpts {
            fa: self.fa && prefill_flash && spec.prefill_fa(),
            ew: self.ew && !spec.act_f32,
            f16y: self.f16y && !spec.act_f32,
            graph: self.graph,
            lt: self.lt && !spec.act_f32,
            fg: self.fg && self.fa && prefill_flash && spec.prefill_fa(),
            rmsb: self.rmsb && self.ew && !spec.act_f32 && spec.has_rmsnorm_b(),
        }
    }
}

/// Event timers around each launch of the passes being profiled (a pool reused across passes).
#[derive(Default)]
pub struct FineProf {
    pool: Vec<GpuTimer>,
    used: usize,
    /// (label, timer index) in launch order; the first entry is the whole pass ("span").
    spans: Vec<(&'static str, usize)>,
    /// ms per label, summed over the passes read so far; "span" the passes' spans, "gaps" the
    /// time between consecutive timed launches (GPU idle or untimed work).
    pub sums: Vec<(String, f64)>,
    pub passes: usize,
}

impl FineProf {
    /// Starts a timer labelled `label`; returns its index for [`FineProf::end`].
    pub fn begin(&mut self, gpu: &Gpu, label: &'static str) -> Result<usize> {
        if self.used == self.pool.len() {
            self.pool.push(gpu.timer()?);
        }
        let i = self.used;
        self.used += 1;
        self.pool[i].start()?;
        self.spans.push((label, i));
        Ok(i)
    }

    pub fn end(&mut self, i: usize) -> Result<()> {
        self.pool[i].stop()
    }

    /// After the pass's work completed (the caller synchronized): adds this pass's times to `sums`
    /// and frees the timers for the next pass.
    pub fn read_pass(&mut self) -> Result<()> {
        let add = |label: &str, ms: f64, sums: &mut Vec<(String, f64)>| match sums.iter_mut().find(|e| e.0 == label) {
            Some(e) => e.1 += ms,
            None => sums.push((label.to_string(), ms)),
        };
        let mut sums = std::mem::take(&mut self.sums);
        let mut gaps = 0.0;
        for (k, &(label, i)) in self.spans.iter().enumerate() {
            add(label, self.pool[i].elapsed_ms()?, &mut sums);
            // Gaps between consecutive kernel timers (entry 0 is the span around all of them).
            if k >= 2 {
                let prev = self.spans[k - 1].1;
                gaps += self.pool[prev].gap_ms(&self.pool[i])?;
            }
        }
        add("gaps", gaps, &mut sums);
        self.sums = sums;
        self.passes += 1;
        self.spans.clear();
        self.used = 0;
        Ok(())
    }
}

/// The fine profile's label of a GEMM-path GEMM.
pub fn gemm_label(role: Role) -> &'static str {
    match role {
        Role::Qkv => "gemm qkv",
        Role::O => "gemm o",
        Role::GateUp => "gemm gateup",
        Role::Down => "gemm down",
        Role::Head => "gemm head",
    }
}
