//! In-graph timeline of one decode step (issue #11, session 6; `TRTFORGE_TIMELINE=1`).
//!
//! kernels.cu's `tl_enter` / `tl_waited` / `tl_trig` / `tl_exit` (thread 0 of every block of the
//! `tc_*` GEMVs, the decode attention and `argmax_rows`) stamp `%globaltimer` into one record per
//! kernel launch while the constant `c_tl` points at a buffer of [`buf_len`] u64 (zeroed before the
//! replay). This module parses the records and sums them per kernel kind, and holds the bs1 A/B
//! switches ([`Bs1Knobs`]) that `bench` can flip inside one process (`TRTFORGE_BS1_AB`).
use crate::error::{Error, Result};

/// Header u64s (unused).
pub const TL_HDR: usize = 8;
/// Records: launch `%gridid` mod TL_IDS.
pub const TL_IDS: usize = 512;
/// Fields per record: kind | grid id << 8, ~entry min, entry max, ~wait min, wait max, ~trigger
/// min, trigger max, ~exit min, exit max, blocks; each on its own line of TL_LINE u64.
pub const TL_REC: usize = 10;
pub const TL_LINE: usize = 16;

/// u64s of the device buffer `c_tl` points at.
pub fn buf_len() -> usize {
    TL_HDR + TL_IDS * TL_REC * TL_LINE
}

/// Kernel kinds as kernels.cu numbers them (`TL_QKV` ..).
pub fn kind_name(k: u64) -> &'static str {
    match k {
        1 => "qkv",
        2 => "attn",
        3 => "o",
        4 => "gateup",
        5 => "down",
        6 => "head",
        7 => "argmax",
        _ => "?",
    }
}

/// One launch: (first, last) block's stamp of each event, in ns of `%globaltimer`; 0 = none.
#[derive(Debug, Clone, Copy, Default)]
pub struct TlKernel {
    pub kind: u64,
    pub gid: u64,
    pub entry: (u64, u64),
    pub wait: (u64, u64),
    pub trig: (u64, u64),
    pub exit: (u64, u64),
    pub blocks: u64,
}

fn pair(r: &[u64], f: usize) -> (u64, u64) {
    if r[(f + 1) * TL_LINE] == 0 {
        (0, 0)
    } else {
        (!r[f * TL_LINE], r[(f + 1) * TL_LINE])
    }
}

/// The launches of one replay, in order of their first block's entry.
pub fn parse(raw: &[u64]) -> Result<Vec<TlKernel>> {
    if raw.len() < buf_len() {
        return Err(Error::Gpu("timeline buffer too short".into()));
    }
    const W: usize = TL_REC * TL_LINE;
    let mut v: Vec<TlKernel> = (0..TL_IDS)
        .filter(|&s| raw[TL_HDR + s * W] != 0)
        .map(|s| {
            let r = &raw[TL_HDR + s * W..TL_HDR + (s + 1) * W];
            TlKernel {
                kind: r[0] & 0xff,
                gid: r[0] >> 8,
                entry: pair(r, 1),
                wait: pair(r, 3),
                trig: pair(r, 5),
                exit: pair(r, 7),
                blocks: r[9 * TL_LINE],
            }
        })
        .filter(|k| k.entry.1 != 0)
        .collect();
    v.sort_by_key(|k| k.entry.0);
    Ok(v)
}

fn d(a: u64, b: u64) -> f64 {
    (a as f64 - b as f64) * 1e-3
}

/// Per kind, sums over its launches (µs) of:
/// - `span`: last block's exit − the previous launch's last exit (its share of the step);
/// - `body`: last exit − first block past griddepcontrol.wait;
/// - `release`: first block past the wait − the previous launch's last exit (dependency latency);
/// - `early`: the previous launch's last exit − this launch's first entry (> 0: blocks were
///   resident before the previous kernel ended, i.e. PDL overlap);
/// - `fill`: last block's entry − first block's entry;
/// - `tail`: last exit − first exit (block imbalance);
/// - `trig`: last block's trigger − first block past the wait.
pub fn summarize(ks: &[TlKernel]) -> String {
    const COLS: usize = 7;
    let mut kinds: Vec<(u64, usize, [f64; COLS], u64)> = vec![];
    for (i, k) in ks.iter().enumerate() {
        if i == 0 || k.exit.1 == 0 {
            continue;
        }
        let prev = ks[..i].iter().rev().find(|p| p.exit.1 != 0).map_or(0, |p| p.exit.1);
        if prev == 0 {
            continue;
        }
        let w0 = if k.wait.0 != 0 { k.wait.0 } else { k.entry.0 };
        let row = [
            d(k.exit.1, prev),
            d(k.exit.1, w0),
            d(w0, prev),
            d(prev, k.entry.0),
            d(k.entry.1, k.entry.0),
            d(k.exit.1, k.exit.0),
            if k.trig.1 != 0 { d(k.trig.1, w0) } else { 0.0 },
        ];
        match kinds.iter_mut().find(|e| e.0 == k.kind) {
            Some(e) => {
                e.1 += 1;
                for (a, b) in e.2.iter_mut().zip(row) {
                    *a += b;
                }
            }
            None => kinds.push((k.kind, 1, row, k.blocks)),
        }
    }
    let total = match (ks.first(), ks.iter().rev().find(|k| k.exit.1 != 0)) {
        (Some(a), Some(b)) => d(b.exit.1, a.entry.0),
        _ => 0.0,
    };
    // Timer granularity: the smallest positive difference between two stamps.
    let mut st: Vec<u64> =
        ks.iter().flat_map(|k| [k.entry.0, k.entry.1, k.wait.0, k.exit.1]).filter(|&t| t != 0).collect();
    st.sort_unstable();
    st.dedup();
    let tick = st.windows(2).map(|w| w[1] - w[0]).min().unwrap_or(0);
    // Records hold one launch each when the grid ids of the replay span fewer than TL_IDS.
    let (g0, g1) = (ks.iter().map(|k| k.gid).min().unwrap_or(0), ks.iter().map(|k| k.gid).max().unwrap_or(0));
    let mut s = format!(
        "timeline: {} launches (grid ids {g0}..{g1}{}), first entry to last exit {:.1} µs (timer step {} ns); per kind, µs summed over launches: span / body / release / early / fill / tail / trig\n",
        ks.len(),
        if g1 - g0 < TL_IDS as u64 { "" } else { ", WRAPPED: records may mix launches" },
        total,
        tick
    );
    for (kind, n, r, blocks) in &kinds {
        s.push_str(&format!(
            "timeline   {:<7} ×{:<3} ({:>4} blocks) span {:7.1} | body {:7.1} | release {:6.1} | early {:6.1} | fill {:6.1} | tail {:6.1} | trig {:6.1}\n",
            kind_name(*kind),
            n,
            blocks,
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6]
        ));
    }
    s
}

/// The launches as CSV (ns relative to the first entry) for the raw logs.
pub fn csv(ks: &[TlKernel]) -> String {
    let t0 = ks.first().map_or(0, |k| k.entry.0);
    let rel = |t: u64| if t == 0 { -1 } else { t as i64 - t0 as i64 };
    let mut s =
        String::from("i,kind,blocks,entry_min,entry_max,wait_min,wait_max,trig_min,trig_max,exit_min,exit_max\n");
    for (i, k) in ks.iter().enumerate() {
        s.push_str(&format!(
            "{i},{},{},{},{},{},{},{},{},{},{}\n",
            kind_name(k.kind),
            k.blocks,
            rel(k.entry.0),
            rel(k.entry.1),
            rel(k.wait.0),
            rel(k.wait.1),
            rel(k.trig.0),
            rel(k.trig.1),
            rel(k.exit.0),
            rel(k.exit.1)
        ));
    }
    s
}

/// Session 21: the per-tile trace of the tensor-core GEMVs (kernels.cu `tt_*`, TL_ON builds with `c_tt` set;
/// `TRTFORGE_TIMELINE=1 TRTFORGE_TIMELINE_TILES=1 TRTFORGE_TIMELINE_RAW=DIR` in `bench`). Slots (launch
/// `%gridid` mod TT_SLOTS) of a TT_HDR header (gid, kind, grid) and TT_BLOCKS records of TT_F u64.
/// (512 like TL_IDS: a decode step launches more than 128 kernels, so fewer slots would let two launches of one
/// replay share a slot.)
pub const TT_SLOTS: usize = 512;
pub const TT_BLOCKS: usize = 528;
pub const TT_F: usize = 16;
pub const TT_HDR: usize = 8;
/// Stamps of a record (kernels.cu TT_WAIT0 .. TT_END), then the SM (TT_SMID) and the tiles walked (TT_NT).
const TT_TIME_FIELDS: usize = 14;
const TT_TILES: usize = 5;

/// u64s of the device buffer `c_tt` points at.
pub fn tt_buf_len() -> usize {
    TT_SLOTS * (TT_HDR + TT_BLOCKS * TT_F)
}

/// The trace as CSV, a line per traced block, launches in order of their first stamp: launch index, kind, grid,
/// block, SM, tiles walked, then ns from the launch's first stamp (-1 = none) of wait0 (before
/// griddepcontrol.wait), wait1 (after it), staged (the prologue's barrier), per tile i `tNa` (partials published)
/// and `tNb` (epilogue done), end, then the launch's first stamp itself (`t0`, ns of %globaltimer: launches of
/// different kernels line up by it).
pub fn tt_csv(raw: &[u64]) -> Result<String> {
    if raw.len() < tt_buf_len() {
        return Err(Error::Gpu("tile trace buffer too short".into()));
    }
    // Each slot: its header and its traced blocks' records.
    let slot_len = TT_HDR + TT_BLOCKS * TT_F;
    let slot = |sl: usize| {
        let (h, recs) = raw[sl * slot_len..(sl + 1) * slot_len].split_at(TT_HDR);
        let grid = (h[2] as usize).min(TT_BLOCKS);
        (h, recs.chunks_exact(TT_F).take(grid))
    };
    let mut launches: Vec<(u64, usize)> = vec![]; // (first stamp, slot)
    for sl in 0..TT_SLOTS {
        let (h, recs) = slot(sl);
        if h[1] == 0 {
            continue;
        }
        if let Some(first) = recs.map(|r| r[0]).filter(|&t| t != 0).min() {
            launches.push((first, sl));
        }
    }
    launches.sort();
    let mut s = String::from("i,kind,grid,block,smid,tiles,wait0,wait1,staged");
    for i in 0..TT_TILES {
        s.push_str(&format!(",t{i}a,t{i}b"));
    }
    s.push_str(",end,t0\n");
    for (i, &(t0, sl)) in launches.iter().enumerate() {
        let (h, recs) = slot(sl);
        for (b, r) in recs.enumerate() {
            let (smid, tiles) = (r[TT_TIME_FIELDS], r[TT_TIME_FIELDS + 1]);
            s.push_str(&format!("{i},{},{},{b},{smid},{tiles}", kind_name(h[1]), h[2]));
            for &t in &r[..TT_TIME_FIELDS] {
                s.push_str(&format!(",{}", if t == 0 { -1 } else { t as i64 - t0 as i64 }));
            }
            s.push_str(&format!(",{t0}\n"));
        }
    }
    Ok(s)
}

/// bs1 switches that `bench` flips inside one process (`TRTFORGE_BS1_AB=base,trig,occ1,...`;
/// also `TRTFORGE_BS1=...` at engine start). Tokens joined by `+`:
/// `trig` / `trigw` (tc_* and attention trigger their dependents at entry / after the wait), `cl`
/// (`attn_decode_cl` at bs1 too), `tcm` (multi-tile GEMVs), `scpre` (scales loaded with the weights), `occN` (tensor-core GEMV grids
/// sized for at most N blocks per SM), `nsN` (decode attention splits per (row, kv head) forced to N).
/// Session 7: `mtrig` / `mtrigw` / `mtrig=DDDDDD` (the same trigger modes for launches of 2..8 rows),
/// `scpre8` (scales with the weights at every GEMV row count), `am1` (the one-block `argmax_rows`
/// instead of `argmax_mb`). Session 10: `cg` / `mcg`; session 11: `ocomb` (the split attention's
/// combine in the one-row o GEMV's prologue).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bs1Knobs {
    /// `c_trig` per kernel kind (qkv, attn, o, gateup, down, head): 0 trigger after the main loop
    /// (default), 1 also at entry (`trig`), 2 also right after griddepcontrol.wait (`trigw`);
    /// `trig=DDDDDD` sets each kind (digits in that order).
    pub trig: [u8; 6],
    /// The same for launches of 2..=GEMV_MAX_T rows (`c_trig[8 + kind]`; `mtrig`, `mtrigw`, `mtrig=`).
    pub mtrig: [u8; 6],
    /// `attn_decode_cl` (cluster, K/V loads before the wait) at every batch size (`cl`).
    pub attn_cl: bool,
    /// `attn_decode_cg` (K/V loads before the wait, no cluster: partials + last-block combine) for
    /// decode passes of up to GEMV_MAX_T rows (`cg`, session 10).
    pub attn_cg: bool,
    /// `attn_decode_cg` for decode passes of 2..=GEMV_MAX_T rows only (`mcg`).
    pub attn_mcg: bool,
    /// The multi-tile tensor-core GEMVs `tcm_*` instead of `tc_*` (`tcm`).
    pub tcm: bool,
    /// `c_scpre`: tc_* load the int4 group / int8 row scales with the weights (`scpre`).
    pub scpre: bool,
    /// `scpre` at every GEMV row count, not only one row (`scpre8`).
    pub scpre8: bool,
    /// The one-block `argmax_rows` (session 6) instead of `argmax_mb` (`am1`).
    pub am1: bool,
    /// One-row decode passes: the split attention (`attn_decode_tc` / `attn_decode_cg`) stores its
    /// partial records and the o GEMV `tcc_*` combines them in its prologue (`ocomb`, session 11).
    pub ocomb: bool,
    pub occ_cap: Option<u32>,
    pub attn_ns: Option<usize>,
    /// Every kernel's preferred shared-memory carveout in percent (`coN`, 0..=100; session 11); None:
    /// the driver's choice per kernel.
    pub carveout: Option<i32>,
    /// Tiles (16 output rows) per block of the folded o GEMV `tcc_*` (`tccN`, session 12): fewer
    /// blocks copy the attention's records (None: as many blocks as fit, one tile each).
    pub tcc_tiles: Option<usize>,
    /// Copies of the fold records a one-row folded attention writes (`repN`, 1..=8, session 12): o
    /// block i reads copy i % N, so fewer blocks read each L2 line (None: one copy).
    pub fold_reps: Option<usize>,
    /// The folded o GEMV `tcc_*` in clusters of up to N blocks (`oclN`, 2/4/8, session 12; 16, session 13): each block
    /// combines 1/N of the heads and shares its x values through distributed shared memory.
    pub o_cluster: Option<u32>,
    /// The qkv GEMV through its two-blocks-per-SM instance `tcr2_*` at one row (`r2`, session 13):
    /// all of TinyLlama's 160 qkv tiles resident at once (the uncapped fp16 instance's 85 registers
    /// allow one block per SM: 80 blocks of two tiles, the second tile's loads after the first's sum).
    pub qkv_r2: bool,
    /// The same at 2..=GEMV_MAX_T rows (`mr2`).
    pub qkv_mr2: bool,
    /// One-row tensor-core GEMVs (`tc_*`, `tcr1_*`, `tcr2_*`) on one block per resident slot (at most
    /// one per tile), tiles dealt round-robin (`sp`, session 13), instead of the fewest blocks that
    /// take ⌈tiles / slots⌉ tiles each: e.g. TinyLlama's gate/up at 264 blocks of 2–3 tiles (5–6 per
    /// SM) instead of 235 of 3 (103 SMs with 6 tiles, 29 with 3).
    pub spread1: bool,
    /// The same at 2..=GEMV_MAX_T rows (`msp`).
    pub spread8: bool,
}

impl Bs1Knobs {
    /// `c_trig` of kernels.cu, indexed by its TL_* kind (1 = qkv .. 6 = head): one-row launches,
    /// then (from 8 on) launches of 2..=GEMV_MAX_T rows.
    pub fn trig_modes(&self) -> [i32; 16] {
        let mut m = [0i32; 16];
        for (i, (&x, &y)) in self.trig.iter().zip(&self.mtrig).enumerate() {
            m[i + 1] = x as i32;
            m[i + 9] = y as i32;
        }
        m
    }

    /// Whether a qkv GEMV launch of `rows` rows takes its `tcr2_*` instance (`r2` / `mr2`).
    pub fn qkv_r2_rows(&self, rows: usize) -> bool {
        if rows == 1 {
            self.qkv_r2
        } else {
            self.qkv_mr2
        }
    }

    /// Whether a tensor-core GEMV launch of `rows` rows runs one block per resident slot (`sp` / `msp`).
    pub fn spread_rows(&self, rows: usize) -> bool {
        if rows == 1 {
            self.spread1
        } else {
            self.spread8
        }
    }

    /// `c_scpre`: the largest GEMV row count that loads its scales with the weights (0: none).
    pub fn scpre_rows(&self) -> i32 {
        if self.scpre8 {
            crate::backend::cuda::kernels::GEMV_MAX_T as i32
        } else {
            self.scpre as i32
        }
    }

    pub fn parse(v: &str) -> Result<Bs1Knobs> {
        Bs1Knobs::parse_on(Bs1Knobs::default(), v)
    }

    /// `v`'s switches applied on top of `k` (bench: `default+am1` = the engine's default plus `am1`).
    pub fn parse_on(mut k: Bs1Knobs, v: &str) -> Result<Bs1Knobs> {
        for t in v.split('+').map(str::trim).filter(|t| !t.is_empty() && *t != "base") {
            if t == "off" {
                k = Bs1Knobs::default();
            } else if t == "trig" {
                k.trig = [1; 6];
            } else if t == "trigw" {
                k.trig = [2; 6];
            } else if t == "mtrig" {
                k.mtrig = [1; 6];
            } else if t == "mtrigw" {
                k.mtrig = [2; 6];
            } else if let Some((multi, d)) =
                t.strip_prefix("trig=").map(|d| (false, d)).or_else(|| t.strip_prefix("mtrig=").map(|d| (true, d)))
            {
                let m: Vec<u8> = d.bytes().map(|b| b.wrapping_sub(b'0')).collect();
                if m.is_empty() || m.len() > 6 || m.iter().any(|&x| x > 2) {
                    return Err(Error::Invalid(format!("bs1 switch {t:?}: trig= takes up to 6 digits 0-2")));
                }
                let dst = if multi { &mut k.mtrig } else { &mut k.trig };
                dst[..m.len()].copy_from_slice(&m);
            } else if t == "scpre8" {
                k.scpre8 = true;
            } else if t == "am1" {
                k.am1 = true;
            } else if t == "ocomb" {
                k.ocomb = true;
            } else if t == "cl" {
                k.attn_cl = true;
            } else if t == "cg" {
                k.attn_cg = true;
            } else if t == "mcg" {
                k.attn_mcg = true;
            } else if t == "r2" {
                k.qkv_r2 = true;
            } else if t == "mr2" {
                k.qkv_mr2 = true;
            } else if t == "sp" {
                k.spread1 = true;
            } else if t == "msp" {
                k.spread8 = true;
            } else if t == "tcm" {
                k.tcm = true;
            } else if t == "scpre" {
                k.scpre = true;
            } else if let Some(n) = t.strip_prefix("occ").and_then(|n| n.parse().ok()) {
                k.occ_cap = Some(n);
            } else if let Some(n) = t.strip_prefix("tcc").and_then(|n| n.parse::<usize>().ok()) {
                if n == 0 {
                    return Err(Error::Invalid(format!("bs1 switch {t:?}: tccN takes N >= 1 tiles per block")));
                }
                k.tcc_tiles = Some(n);
            } else if let Some(n) = t.strip_prefix("ocl").and_then(|n| n.parse::<u32>().ok()) {
                if !matches!(n, 1 | 2 | 4 | 8 | 16) {
                    return Err(Error::Invalid(format!("bs1 switch {t:?}: oclN takes clusters of 1, 2, 4, 8 or 16")));
                }
                k.o_cluster = Some(n);
            } else if let Some(n) = t.strip_prefix("rep").and_then(|n| n.parse::<usize>().ok()) {
                if !(1..=8).contains(&n) {
                    return Err(Error::Invalid(format!("bs1 switch {t:?}: repN takes 1..=8 copies")));
                }
                k.fold_reps = Some(n);
            } else if let Some(n) = t.strip_prefix("ns").and_then(|n| n.parse().ok()) {
                k.attn_ns = Some(n);
            } else if let Some(n) = t.strip_prefix("co").and_then(|n| n.parse::<i32>().ok()) {
                if !(0..=100).contains(&n) {
                    return Err(Error::Invalid(format!("bs1 switch {t:?}: coN takes a percentage 0-100")));
                }
                k.carveout = Some(n);
            } else {
                return Err(Error::Invalid(format!(
                    "unknown bs1 switch {t:?} (off, trig, trigw, trig=DDDDDD, mtrig, mtrigw, mtrig=DDDDDD, cl, cg, mcg, tcm, scpre, scpre8, am1, ocomb, occN, nsN, coN, tccN, repN, oclN, r2, mr2, sp, msp)"
                )));
            }
        }
        Ok(k)
    }
}

/// The default bs1 / bs2–8 switches of an engine (measured on the H200, sessions 6 and 7,
/// docs/cuda.md): with PDL on sm_90 and the tensor-core GEMVs,
/// - f16 weights, a decode step that reads at least 1.5 GB (TinyLlama fp16): every kind triggers its
///   dependents at entry at one row (`trig`: session 7 call 1, 1,071 → 1,162 tok/s vs `off`) and
///   right after griddepcontrol.wait at 2–8 rows (`mtrigw`: bs8 6,816 → 7,217);
/// - smaller f16 steps (SmolLM2): `trigw` + `cl` at one row (session 6: 1,879 → 2,037); 2–8 rows
///   not measured (off);
/// - int4: `trigw` + `cl` + `scpre` at one row (1,457 → 1,592), `mtrigw` + `scpre8` at 2–8 rows
///   (bs8 8,399 → 8,885);
/// - int8 / fp8 (session 22, with kernels.cu RS_LATE): `scpre` + `scpre8` where `cg` exists (below; bs1 +1 %,
///   bs8 +3 %);
/// - int8 / fp8: nothing at one row (session 7 measured `off` 1.8 / 2.8 % faster than
///   `trigw` + `cl` + `scpre` once the timeline stamps were compiled out: int8 1,429 vs 1,404,
///   fp8 1,476 vs 1,436), `mtrigw` at 2–8 rows (bs8 int8 8,135 → 8,428, fp8 8,401 → 8,544);
/// - every format, where the cluster attention kernels exist (`cl`: sm_90, f16 caches): `mcg`, the
///   2–8-row decode attention `attn_decode_cg` (session 10, H200 in one process each: bs8 fp16
///   7,943 → 8,134, int4 9,886 → 10,256, int8 9,467 → 9,801, fp8 9,626 → 9,923, SmolLM2 shape 12,952
///   → 13,165; at one row it lost for fp16 and SmolLM2 and was within ±1 % otherwise, so not there);
/// - session 11 (H200, one process each, bs1): `cg` at one row too for int8 / fp8 with `trigw`
///   (int8 1,453 → 1,557) and int4 (1,560 → 1,588); small f16 steps (SmolLM2) `cg` + `ocomb`, the split
///   combine in the o GEMV's prologue (2,210 → 2,356; TinyLlama fp16 lost 6.5 % with `ocomb`: its 32
///   heads' records cost the o blocks more than the attention saves, so not there).
/// - session 12 (H200, one process each, bs1): the fold in clusters of 8 o blocks (`ocomb` + `ocl8`: each
///   block combines 4 of TinyLlama's 32 heads and shares x through distributed shared memory) for the
///   TinyLlama-size f16 engine (with `cg`: 1,223 → 1,258) and int4 / int8 / fp8 (1,596 → 1,643,
///   1,564 → 1,627, 1,597 → 1,664); SmolLM2-size f16 keeps the one-block fold (clusters: equal).
/// - session 13 (H200, one process, bs1 / bs8): the TinyLlama-size f16 qkv at two blocks per SM (`r2` +
///   `mr2`: 160 one-tile blocks instead of 80 two-tile ones; the uncapped instance has 85 registers):
///   1,228 → 1,253 (+2.0 %), bs8 8,024 → 8,113 (+1.1 %); the quantized qkv instances already fit two
///   blocks per SM, SmolLM2's too (equal). Every tensor-core format: one GEMV block per resident slot,
///   tiles round-robin (`sp` + `msp`; TinyLlama's gate/up 264 blocks instead of 235): fp16 bs1 1,285 →
///   1,301, bs8 8,267 → 8,369, int8 1,628 → 1,647 / 9,803 → 9,903, fp8 1,668 → 1,687 / 9,958 → 10,044,
///   int4 and SmolLM2 equal (±0.3 %).
///
/// `cl`, `cg` and `ocomb` apply to one-row passes; `trig*` to one-row launches, `mtrig*` and `mcg` to
/// passes of 2–8 rows. `cg` and `ocomb` only where the cluster kernels exist (`cl`), as `mcg`.
pub fn bs1_default(fmt: crate::quant::WeightFormat, weight_bytes: usize, pdl_tc: bool, cl: bool) -> Bs1Knobs {
    use crate::quant::WeightFormat::*;
    let off = Bs1Knobs::default();
    if !pdl_tc {
        return off;
    }
    // Session 12: the folded combine in clusters of 8 o blocks (`ocomb` + `ocl8`) where the model has
    // many heads (TinyLlama's 32: each o block would otherwise copy all heads' records).
    let ocl = if cl { Some(8) } else { None };
    // The quantized formats' one-row and 2–8-row switches (int4 adds `cl`; int8 / fp8 use them only with `cl`).
    let quant = Bs1Knobs {
        trig: [2; 6],
        mtrig: [2; 6],
        attn_cg: cl,
        scpre: true,
        scpre8: true,
        ocomb: cl,
        o_cluster: ocl,
        ..off
    };
    let k = match fmt {
        F16 if weight_bytes >= 1_500_000_000 => Bs1Knobs {
            trig: [1; 6],
            mtrig: [2; 6],
            attn_cg: cl,
            ocomb: cl,
            o_cluster: ocl,
            qkv_r2: true,
            qkv_mr2: true,
            ..off
        },
        F16 => Bs1Knobs { trig: [2; 6], attn_cl: cl, attn_cg: cl, ocomb: cl, ..off },
        I4 { .. } => Bs1Knobs { attn_cl: cl, ..quant },
        // Session 22: int8 / fp8 as int4 (`scpre` + `scpre8` too, now that the next tile's row scales are taken a
        // tile later: kernels.cu RS_LATE; session 7's `scpre` loss was that stall) but without `cl` at one row. H200,
        // one process, alternating: int8 bs1 1,698 / 1,693 -> 1,715 / 1,720, bs8 10,131 / 10,173 -> 10,448 / 10,492;
        // fp8 bs1 1,745 / 1,741 -> 1,759 / 1,757, bs8 10,304 / 10,307 -> 10,607 / 10,638; checks udown8 / udownf8
        // with the same errors. Without the cg kernel `trigw` lost (session 7: plain 1.8 % faster than trigw + cl +
        // scpre).
        I8 | F8 if cl => quant,
        I8 | F8 => Bs1Knobs { mtrig: [2; 6], ..off },
        _ => return off,
    };
    Bs1Knobs { attn_mcg: cl, spread1: true, spread8: true, ..k }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_trace_csv_reads_the_kernels_layout() {
        // Two launches in slots 5 and 3 (slot 3's stamps later): kind, grid, per block the stamps, SM and tiles.
        let mut raw = vec![0u64; tt_buf_len()];
        let slot_len = TT_HDR + TT_BLOCKS * TT_F;
        for (sl, kind, t0) in [(5usize, 4u64, 1_000u64), (3, 5, 9_000)] {
            raw[sl * slot_len..sl * slot_len + 3].copy_from_slice(&[77, kind, 2]);
            for b in 0..2 {
                let r = sl * slot_len + TT_HDR + b * TT_F;
                raw[r] = t0 + 10 * b as u64; // wait0
                raw[r + 1] = t0 + 500; // wait1
                raw[r + 3] = t0 + 2_000; // tile 0 published
                raw[r + 14] = 7 + b as u64; // SM
                raw[r + 15] = 1; // tiles
            }
        }
        let csv = tt_csv(&raw).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 5, "{csv}");
        assert!(lines[0].starts_with("i,kind,grid,block,smid,tiles,wait0,wait1,staged,t0a,t0b"));
        assert_eq!(lines[1], "0,gateup,2,0,7,1,0,500,-1,2000,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,1000");
        assert_eq!(lines[0].split(',').count(), lines[1].split(',').count());
        assert!(lines[2].starts_with("0,gateup,2,1,8,1,10,500,"));
        assert!(lines[3].starts_with("1,down,2,0,7,1,0,500,"));
        assert!(lines[0].ends_with(",end,t0") && lines[3].ends_with(",9000"), "{csv}");
        assert!(tt_csv(&raw[..10]).is_err());
    }

    #[test]
    fn trace_constants_match_kernels_cu() {
        // kernels.cu's #defines of the two stamp layouts are the ones this module reads.
        let src = include_str!("kernels.cu");
        let def = |name: &str| -> usize {
            let line =
                src.lines().find(|l| l.starts_with(&format!("#define {name} "))).unwrap_or_else(|| panic!("{name}"));
            line.split_whitespace().nth(2).unwrap().parse().unwrap()
        };
        assert_eq!([def("TL_HDR"), def("TL_IDS"), def("TL_REC"), def("TL_LINE")], [TL_HDR, TL_IDS, TL_REC, TL_LINE]);
        assert_eq!(
            [def("TT_SLOTS"), def("TT_BLOCKS"), def("TT_F"), def("TT_HDR")],
            [TT_SLOTS, TT_BLOCKS, TT_F, TT_HDR]
        );
        assert_eq!([def("TT_TILES"), def("TT_END") + 1], [TT_TILES, TT_TIME_FIELDS]);
        assert_eq!([def("TT_SMID"), def("TT_NT")], [TT_TIME_FIELDS, TT_TIME_FIELDS + 1]);
    }

    #[test]
    fn knobs_parse() {
        assert_eq!(Bs1Knobs::parse("base").unwrap(), Bs1Knobs::default());
        let k = Bs1Knobs::parse("trig+occ1+ns4").unwrap();
        assert!(k.trig == [1; 6] && k.occ_cap == Some(1) && k.attn_ns == Some(4) && !k.attn_cl);
        assert_eq!(Bs1Knobs::parse("trigw+cl").unwrap().trig, [2; 6]);
        let m = Bs1Knobs::parse("trig=1201").unwrap();
        assert_eq!(m.trig_modes(), [0, 1, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let mm = Bs1Knobs::parse("trigw+mtrig=21+scpre8+am1").unwrap();
        assert_eq!(mm.trig_modes(), [0, 2, 2, 2, 2, 2, 2, 0, 0, 2, 1, 0, 0, 0, 0, 0]);
        assert!(mm.am1 && mm.scpre_rows() == 8);
        assert_eq!(Bs1Knobs::parse("mtrigw").unwrap().mtrig, [2; 6]);
        assert_eq!(Bs1Knobs::parse("scpre").unwrap().scpre_rows(), 1);
        assert!(Bs1Knobs::parse("trig=3").is_err());
        assert_eq!(Bs1Knobs::parse("trig+off").unwrap(), Bs1Knobs::default());
        use crate::quant::WeightFormat::*;
        let f16 = bs1_default(F16, 2_068_000_000, true, true);
        assert!(f16.trig == [1; 6] && f16.mtrig == [2; 6] && !f16.attn_cl && f16.attn_mcg && f16.attn_cg);
        assert!(f16.ocomb && f16.o_cluster == Some(8) && f16.qkv_r2 && f16.qkv_mr2 && f16.spread_rows(1));
        assert!(!bs1_default(F16, 2_068_000_000, true, false).attn_mcg);
        assert_eq!(Bs1Knobs::parse("co100").unwrap().carveout, Some(100));
        assert!(Bs1Knobs::parse("co101").is_err());
        assert_eq!(Bs1Knobs::parse("ocomb+tcc2").unwrap().tcc_tiles, Some(2));
        assert!(Bs1Knobs::parse("tcc0").is_err());
        assert_eq!(Bs1Knobs::parse("ocomb+rep4").unwrap().fold_reps, Some(4));
        assert!(Bs1Knobs::parse("rep9").is_err());
        assert_eq!(Bs1Knobs::parse("ocomb+ocl8").unwrap().o_cluster, Some(8));
        assert!(Bs1Knobs::parse("ocl3").is_err());
        assert_eq!(Bs1Knobs::parse("ocomb+ocl16").unwrap().o_cluster, Some(16));
        let r2 = Bs1Knobs::parse("r2+mr2").unwrap();
        assert!(r2.qkv_r2_rows(1) && r2.qkv_r2_rows(8) && !Bs1Knobs::parse("r2").unwrap().qkv_r2_rows(2));
        let sp = Bs1Knobs::parse("sp").unwrap();
        assert!(sp.spread_rows(1) && !sp.spread_rows(8) && Bs1Knobs::parse("msp").unwrap().spread_rows(2));
        let oc = Bs1Knobs::parse_on(f16, "+ns4").unwrap();
        assert!(oc.ocomb && oc.attn_ns == Some(4) && oc.trig == [1; 6] && f16.attn_ns.is_none());
        let cg = Bs1Knobs::parse("mcg+cg").unwrap();
        assert!(cg.attn_mcg && cg.attn_cg && cg.trig == [0; 6]);
        let q = bs1_default(I4 { group: 128 }, 630_000_000, true, true);
        assert!(q.trig == [2; 6] && q.mtrig == [2; 6] && q.attn_cl && q.attn_cg && q.ocomb && q.scpre_rows() == 8);
        assert_eq!(q.o_cluster, Some(8));
        let sm = bs1_default(F16, 269_000_000, true, true);
        assert!(sm.trig == [2; 6] && sm.mtrig == [0; 6] && sm.attn_cg && sm.ocomb && sm.scpre_rows() == 0);
        assert_eq!(sm.o_cluster, None);
        let sm_nocl = bs1_default(F16, 269_000_000, true, false);
        assert!(!sm_nocl.attn_cg && !sm_nocl.ocomb && !sm_nocl.attn_mcg);
        for f in [F8, I8] {
            let k = bs1_default(f, 1_100_000_000, true, true);
            assert_eq!(
                k,
                Bs1Knobs {
                    trig: [2; 6],
                    mtrig: [2; 6],
                    attn_cg: true,
                    attn_mcg: true,
                    ocomb: true,
                    o_cluster: Some(8),
                    scpre: true,
                    scpre8: true,
                    spread1: true,
                    spread8: true,
                    ..Bs1Knobs::default()
                }
            );
            assert_eq!(
                bs1_default(f, 1_100_000_000, true, false),
                Bs1Knobs { mtrig: [2; 6], spread1: true, spread8: true, ..Bs1Knobs::default() }
            );
        }
        assert_eq!(bs1_default(F16, 2_068_000_000, false, true), Bs1Knobs::default());
        assert!(Bs1Knobs::parse("bogus").is_err());
    }

    #[test]
    fn parse_and_summarize() {
        let mut raw = vec![0u64; buf_len()];
        // two launches: qkv 0..10 µs, attn entered at 5 µs (early), waited 11, exit 20 µs
        let recs = [(1u64, 0u64, 1000, 1000, 2000, 9000, 10_000), (2, 5000, 6000, 11_000, 11_500, 19_000, 20_000)];
        for (s, r) in recs.iter().enumerate() {
            let gid = 700 + s as u64;
            let b = TL_HDR + (gid as usize % TL_IDS) * TL_REC * TL_LINE;
            let f = |i: usize| b + i * TL_LINE;
            raw[f(0)] = r.0 | gid << 8;
            raw[f(1)] = !r.1;
            raw[f(2)] = r.2;
            raw[f(3)] = !r.3;
            raw[f(4)] = r.4;
            raw[f(7)] = !r.5;
            raw[f(8)] = r.6;
            raw[f(9)] = 4;
        }
        let ks = parse(&raw).unwrap();
        assert_eq!(ks.len(), 2);
        let s = summarize(&ks);
        assert!(s.contains("first entry to last exit 20.0 µs"), "{s}");
        // attn: span 10, body 9, release 1, early 5
        assert!(s.contains("span    10.0 | body     9.0 | release    1.0 | early    5.0"), "{s}");
        assert!(csv(&ks).lines().count() == 3);
    }
}
