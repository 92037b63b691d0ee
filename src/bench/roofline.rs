//! `trtforge bench --roofline`: the CUDA engine on a model (no engine directory): time to first
//! token, decode throughput, achieved bandwidth and its share of the measured memory roofline
//! (device copy bandwidth), per precision and batch size. Warm-up (kernel load, graph capture) is
//! excluded; timings end with a device synchronization; prompts are seeded.
use super::metrics::Summary;
use crate::backend::cpu::KvQuant;
use crate::backend::cuda::bandwidth::copy_bandwidth;
use crate::backend::cuda::{CudaBackend, CudaOptions};
use crate::backend::{Backend, SeqChunk};
use crate::error::{Error, Result};
use crate::model::ModelWeights;
use crate::quant::WeightFormat;
use crate::util::seeded_prompts;
use serde::{Deserialize, Serialize};
use std::time::Instant;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchRow {
    pub precision: String,
    pub batch: usize,
    pub prompt_len: usize,
    pub new_tokens: usize,
    /// Median time of a batched prefill that returns the first tokens (ms).
    pub ttft_ms: f64,
    pub prefill_tok_s: f64,
    /// Generated tokens per second over the decode steps (all sequences).
    pub decode_tok_s: f64,
    pub step_ms: f64,
    /// Bytes one decode step must read: weights + KV cache at the mean context.
    pub bytes_per_step: f64,
    pub achieved_gb_s: f64,
    /// achieved / measured device copy bandwidth.
    pub roofline_pct: f64,
    /// batch / (bytes_per_step / measured bandwidth).
    pub roofline_tok_s: f64,
    /// Bytes of the weights one step reads (records before session 40: 0).
    #[serde(default)]
    pub weight_bytes: f64,
    /// KV cache bytes a token takes across all layers, K and V, in the engine's cache format
    /// (records before session 40: 0).
    #[serde(default)]
    pub kv_bytes_per_token: f64,
}

/// The shapes one roofline run measures.
#[derive(Debug, Clone)]
pub struct RooflineShape {
    pub batches: Vec<usize>,
    pub prompt_len: usize,
    /// Generated tokens per sequence (the first from the prefill, the rest decode steps).
    pub new_tokens: usize,
    /// Timed prefills (TTFT is their median).
    pub runs: usize,
    /// Seed of the prompts ([`seeded_prompts`]).
    pub seed: u64,
}

/// Benchmarks one precision at each batch size; returns the rows and the measured copy bandwidth.
/// `log` receives progress lines.
pub fn bench(
    w: &ModelWeights,
    precision: WeightFormat,
    shape: &RooflineShape,
    log: &mut dyn FnMut(&str),
) -> Result<(Vec<BenchRow>, f64)> {
    bench_kv(w, precision, None, shape, log)
}

/// [`bench`] with a KV cache format: `kv` an 8-bit cache with its static scales (rows are labelled
/// "fp16 KV int8"), None the fp16 cache.
pub fn bench_kv(
    w: &ModelWeights,
    precision: WeightFormat,
    kv: Option<KvQuant>,
    shape: &RooflineShape,
    log: &mut dyn FnMut(&str),
) -> Result<(Vec<BenchRow>, f64)> {
    let label = match kv.as_ref().filter(|k| k.dtype.quantized()) {
        Some(k) => {
            let k_form = match (k.rotate.is_some(), k.k_mean.is_some()) {
                (true, true) => " smooth+rotK",
                (true, false) => " rotK",
                (false, true) => " smoothK",
                (false, false) => "",
            };
            format!("{} KV {}{k_form}", precision.label(), k.dtype.as_str())
        }
        None => precision.label(),
    };
    let RooflineShape { ref batches, prompt_len, new_tokens, runs, seed } = *shape;
    if new_tokens < 2 || prompt_len == 0 || runs == 0 {
        return Err(Error::Invalid(
            "the roofline bench needs an output length of at least 2, an input length and runs of at least 1".into(),
        ));
    }
    let max_b = batches.iter().copied().max().unwrap_or(1);
    // A few spare positions for the warm-up's decode steps, within the model's context.
    let max_seq = (prompt_len + new_tokens + 8).min(w.config.max_position_embeddings).max(prompt_len + new_tokens);
    let t = Instant::now();
    let mut opts = CudaOptions::new(precision, max_b, max_seq);
    opts.kv = kv;
    let mut be = CudaBackend::new(w, opts)?;
    let (cs, cached) = be.compile_info();
    log(&format!(
        "{}: engine ready in {:.1} s (kernels {}), weights {:.1} MB, device memory in use {:.0} MB{}",
        label.clone(),
        t.elapsed().as_secs_f64(),
        if cached { "from cache".to_string() } else { format!("compiled in {cs:.1} s") },
        be.weight_bytes as f64 / 1e6,
        {
            let (free, total) = be.gpu().mem_info();
            total.saturating_sub(free) as f64 / 1e6
        },
        if be.fp8_gemm_params().is_empty() { "" } else { ", FP8 GEMM (W8A8) in the GEMM path" }
    ));
    let bw = copy_bandwidth(be.gpu())?;
    let mut rows = vec![];
    for &b in batches {
        let ps = seeded_prompts(&vec![prompt_len; b], w.config.vocab_size, seed);
        let chunks: Vec<SeqChunk> = ps.iter().enumerate().map(|(slot, t)| SeqChunk { slot, tokens: t }).collect();
        let run_prefill = |be: &mut CudaBackend| -> Result<(f64, Vec<u32>)> {
            for s in 0..b {
                be.reset(s);
            }
            be.gpu().sync()?;
            let t0 = Instant::now();
            let first = be.forward_greedy(&chunks)?; // ends with a device-to-host copy
            Ok((t0.elapsed().as_secs_f64() * 1e3, first))
        };
        // Warm-up: prefill, a few decode steps (captures this bucket's graph).
        let (_, first) = run_prefill(&mut be)?;
        let last: Vec<(usize, u32)> = first.iter().enumerate().map(|(s, &t)| (s, t)).collect();
        be.greedy_decode(&last, 4)?;
        let mut ttfts = vec![];
        let mut last = vec![];
        let first0 = first.clone();
        for _ in 0..runs {
            let (ms, first) = run_prefill(&mut be)?;
            if first != first0 {
                log(&format!("{} bs{b}: WARNING first tokens differ between prefill runs", label.clone()));
            }
            ttfts.push(ms);
            last = first.iter().enumerate().map(|(s, &t)| (s, t)).collect();
        }
        let ttft = Summary::of(&ttfts).map(|s| s.median).unwrap_or(f64::NAN);
        if std::env::var("TRTFORGE_TTFT_RUNS").as_deref() == Ok("1") {
            // Session 7: every timed TTFT in order (is the row's median at steady state?).
            let all: Vec<String> = ttfts.iter().map(|ms| format!("{ms:.3}")).collect();
            log(&format!("{} bs{b} TTFT runs (ms, in order): {}", label.clone(), all.join(" ")));
        }
        if b == 1 {
            if let Ok(p) = be.profile_prefill(&ps[0], 3) {
                let total: f64 = p.iter().map(|e| e.1).sum();
                let parts: Vec<String> = p.iter().map(|(k, ms)| format!("{k} {:.0} µs", ms * 1e3)).collect();
                log(&format!(
                    "{} prefill {prompt_len} eager {:.0} µs: {}",
                    label.clone(),
                    total * 1e3,
                    parts.join(", ")
                ));
            }
            // Per kernel kind, no synchronization between kernels (session 6): "gaps" is the GPU
            // idle (or untimed) time between launches inside the pass's span.
            if let Ok(p) = be.profile_prefill_fine(&ps[0], 5) {
                let parts: Vec<String> = p.iter().map(|(k, ms)| format!("{k} {:.1} µs", ms * 1e3)).collect();
                log(&format!("{} prefill {prompt_len} kernels: {}", label.clone(), parts.join(", ")));
            }
            // TRTFORGE_PROFILE_PREFILL=1 (session 7): one more prefill between cuProfilerStart and
            // cuProfilerStop, for `ncu --profile-from-start off` (per-kernel GPU times of one pass).
            if std::env::var("TRTFORGE_PROFILE_PREFILL").as_deref() == Ok("1") {
                be.gpu().sync()?;
                be.gpu().profiler(true)?;
                let r = run_prefill(&mut be);
                be.gpu().sync()?;
                be.gpu().profiler(false)?;
                r?;
            }
            // TRTFORGE_PREFILL_AB="name=flags,…" (session 6): the TTFT and kernel profile of each
            // prefill variant on this engine, flags from f (attn_prefill_fa), e (vectorized
            // epilogues), y (f16 GEMM outputs), g (graph replay); the engine's own setting after.
            // l (session 7): prefill GEMMs through cuBLASLt (`PrefillOpts::lt`); G (session 8, with f):
            // attn_prefill_fg (`PrefillOpts::fg`); r (session 9, with e): rmsnorm_b (`PrefillOpts::rmsb`).
            if let Ok(ab) = std::env::var("TRTFORGE_PREFILL_AB") {
                let keep = be.prefill_opts();
                for v in ab.split(',').filter(|v| !v.is_empty()) {
                    let (name, flags) = v.split_once('=').unwrap_or((v, ""));
                    let got = be.set_prefill_opts(crate::backend::cuda::prefill::PrefillOpts {
                        fa: flags.contains('f'),
                        ew: flags.contains('e'),
                        f16y: flags.contains('y'),
                        graph: flags.contains('g'),
                        lt: flags.contains('l'),
                        fg: flags.contains('G'),
                        rmsb: flags.contains('r'),
                    })?;
                    let one = |be: &mut CudaBackend| -> Result<String> {
                        let (_, f1) = run_prefill(be)?;
                        let mut ts = vec![];
                        let mut same = f1 == first0;
                        for _ in 0..runs.max(5) {
                            let (ms, f) = run_prefill(be)?;
                            same &= f == first0;
                            ts.push(ms);
                        }
                        let med = Summary::of(&ts).map(|s| s.median).unwrap_or(f64::NAN);
                        let p = be.profile_prefill_fine(&ps[0], 5)?;
                        let parts: Vec<String> = p.iter().map(|(k, ms)| format!("{k} {:.1} µs", ms * 1e3)).collect();
                        Ok(format!(
                            "TTFT {med:.3} ms (min {:.3}), first tokens {}; kernels: {}",
                            ts.iter().cloned().fold(f64::INFINITY, f64::min),
                            if same { "= default" } else { "DIFFER from default" },
                            parts.join(", ")
                        ))
                    };
                    let line = one(&mut be).unwrap_or_else(|e| format!("error: {e}"));
                    log(&format!("{} AB {name} ({got:?}): {line}", label.clone()));
                }
                be.set_prefill_opts(keep)?;
            }
        }
        if let Ok(p) = be.profile_decode(b, 5) {
            // "persist …" entries (TRTFORGE_PERSIST_STAMPS=1) split the persistent layer's time.
            let total: f64 = p.iter().filter(|e| !e.0.starts_with("persist ")).map(|e| e.1).sum();
            let parts: Vec<String> = p.iter().map(|(k, ms)| format!("{k} {:.0} µs", ms * 1e3)).collect();
            log(&format!("{} bs{b} eager decode step {:.0} µs: {}", label.clone(), total * 1e3, parts.join(", ")));
        }
        let steps = new_tokens - 1;
        be.gpu().sync()?;
        let t0 = Instant::now();
        be.greedy_decode(&last, steps)?; // ends with a device-to-host copy
        let secs = t0.elapsed().as_secs_f64();
        let step_ms = secs * 1e3 / steps as f64;
        let mean_ctx = prompt_len as f64 + new_tokens as f64 / 2.0;
        let kv_per_token = be.kv_bytes_per_token() as f64;
        let bytes = be.weight_bytes as f64 + b as f64 * mean_ctx * kv_per_token;
        let achieved = bytes / (step_ms / 1e3);
        let row = BenchRow {
            precision: label.clone(),
            batch: b,
            prompt_len,
            new_tokens,
            ttft_ms: ttft,
            prefill_tok_s: (b * prompt_len) as f64 / (ttft / 1e3),
            decode_tok_s: (b * steps) as f64 / secs,
            step_ms,
            bytes_per_step: bytes,
            achieved_gb_s: achieved / 1e9,
            roofline_pct: 100.0 * achieved / bw,
            roofline_tok_s: b as f64 / (bytes / bw),
            weight_bytes: be.weight_bytes as f64,
            kv_bytes_per_token: kv_per_token,
        };
        log(&format!(
            "{} bs{b}: TTFT {:.2} ms, decode {:.0} tok/s ({:.3} ms/step, {:.0} GB/s, {:.0} % of {:.0} GB/s)",
            row.precision,
            row.ttft_ms,
            row.decode_tok_s,
            row.step_ms,
            row.achieved_gb_s,
            row.roofline_pct,
            bw / 1e9
        ));
        rows.push(row);
        bs1_extras(&mut be, &label, b, prompt_len, &last, steps, log)?;
    }
    Ok((rows, bw))
}

/// The rows as the Markdown table `bench --roofline` prints.
pub fn markdown(model: &str, prompt_len: usize, new_tokens: usize, copy_bw: f64, rows: &[BenchRow]) -> String {
    let mut s = format!(
        "model {model} | prompt {prompt_len} | new tokens {new_tokens} | roofline = measured D2D copy {:.0} GB/s\n",
        copy_bw / 1e9
    );
    s.push_str("| precision | batch | TTFT ms | prefill tok/s | decode tok/s | ms/step | GB/step | GB/s | % roofline | roofline tok/s | weights MB | KV B/token |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {:.2} | {:.0} | {:.0} | {:.3} | {:.3} | {:.0} | {:.0} % | {:.0} | {:.1} | {:.0} |\n",
            r.precision,
            r.batch,
            r.ttft_ms,
            r.prefill_tok_s,
            r.decode_tok_s,
            r.step_ms,
            r.bytes_per_step / 1e9,
            r.achieved_gb_s,
            r.roofline_pct,
            r.roofline_tok_s,
            r.weight_bytes / 1e6,
            r.kv_bytes_per_token
        ));
    }
    s
}

/// Session 6 (issue #11) diagnostics after a measured batch size, all opt-in:
/// `TRTFORGE_TIMELINE=1` prints the in-graph timeline of a decode step (`cuda::timeline`, 3 replays
/// summed per kernel kind, the last replay's launches as CSV under `TRTFORGE_TIMELINE_RAW=DIR`; with
/// `TRTFORGE_TIMELINE_TILES=1` also the tensor-core GEMVs' per-tile trace of one replay there, session 21);
/// `TRTFORGE_BS1_AB=base,trig,occ1,...` re-times the decode loop (same tokens, same context) under each
/// set of bs1 switches in this process (`default` = the engine's, `off` = none), with the timeline
/// when it is on, then restores the engine's default.
fn bs1_extras(
    be: &mut CudaBackend,
    label: &str,
    b: usize,
    prompt_len: usize,
    last: &[(usize, u32)],
    steps: usize,
    log: &mut dyn FnMut(&str),
) -> Result<()> {
    use crate::backend::cuda::timeline;
    let tl_on = std::env::var("TRTFORGE_TIMELINE").as_deref() == Ok("1");
    let raw_dir = std::env::var("TRTFORGE_TIMELINE_RAW").ok();
    let timeline_log = |be: &mut CudaBackend, tag: &str, log: &mut dyn FnMut(&str)| -> Result<()> {
        if !tl_on {
            return Ok(());
        }
        let reps = be.timeline_decode(b, 3)?;
        for (i, r) in reps.iter().enumerate() {
            for line in timeline::summarize(r).lines() {
                log(&format!("{label} bs{b} {tag} rep{i} {line}"));
            }
        }
        if let (Some(dir), Some(r)) = (raw_dir.as_ref(), reps.last()) {
            let name = format!("{dir}/tl_{}_bs{b}_{tag}.csv", label.replace([' ', '/'], "_"));
            std::fs::write(&name, timeline::csv(r)).map_err(|err| Error::Io { path: name.clone().into(), err })?;
        }
        Ok(())
    };
    timeline_log(be, "default", log)?;
    // Session 21: TRTFORGE_TIMELINE_TILES=1 adds the per-tile trace of one default replay (tt_*.csv in the raw dir;
    // without TRTFORGE_TIMELINE=1 `tile_trace_decode` says its stamps are not compiled).
    if std::env::var("TRTFORGE_TIMELINE_TILES").as_deref() == Ok("1") {
        let dir = raw_dir.as_ref().ok_or_else(|| {
            Error::Invalid("TRTFORGE_TIMELINE_TILES=1 writes its CSV under TRTFORGE_TIMELINE_RAW=DIR; set it".into())
        })?;
        let name = format!("{dir}/tt_{}_bs{b}.csv", label.replace([' ', '/'], "_"));
        let csv = be.tile_trace_decode(b)?;
        std::fs::write(&name, csv).map_err(|err| Error::Io { path: name.clone().into(), err })?;
        log(&format!("{label} bs{b} tile trace: {name}"));
    }
    let Ok(ab) = std::env::var("TRTFORGE_BS1_AB") else { return Ok(()) };
    if b > 8 {
        return Ok(());
    }
    let mut base_tokens: Option<Vec<Vec<u32>>> = None;
    for v in ab.split(',').map(str::trim).filter(|v| !v.is_empty()) {
        // "default": the engine's own default switches; "off": none (the session-5 behaviour).
        // "default+X": the engine's default plus switches X.
        let k = match v.strip_prefix("default") {
            Some(rest) => timeline::Bs1Knobs::parse_on(be.bs1_default(), rest)?,
            None => timeline::Bs1Knobs::parse(v)?,
        };
        be.set_bs1(k)?;
        for s in 0..b {
            be.set_seq_len(s, prompt_len)?;
        }
        be.greedy_decode(last, 4)?; // warm: captures the graph with these switches
        for s in 0..b {
            be.set_seq_len(s, prompt_len)?;
        }
        be.gpu().sync()?;
        let t0 = Instant::now();
        let toks = be.greedy_decode(last, steps)?;
        let secs = t0.elapsed().as_secs_f64();
        let same = match &base_tokens {
            None => {
                base_tokens = Some(toks);
                "first".to_string()
            }
            Some(bt) => format!("tokens {} the first variant's", if *bt == toks { "==" } else { "!=" }),
        };
        log(&format!(
            "{label} bs{b} variant {v}: decode {:.0} tok/s ({:.3} ms/step; {same})",
            (b * steps) as f64 / secs,
            secs * 1e3 / steps as f64
        ));
        timeline_log(be, v, log)?;
    }
    let d = be.bs1_default();
    be.set_bs1(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_rows_carry_the_memory_columns_and_old_records_still_read() {
        // TinyLlama fp8 weights with an fp8 cache: 22 layers × 2 × 4 kv heads × 64 dims × 1 byte.
        let kv = (22 * 2 * 4 * 64) as f64;
        let r = BenchRow {
            precision: "fp8 + fp8 KV".into(),
            batch: 64,
            prompt_len: 512,
            new_tokens: 128,
            ttft_ms: 100.0,
            prefill_tok_s: 1.0,
            decode_tok_s: 2.0,
            step_ms: 1.0,
            bytes_per_step: 2e9,
            achieved_gb_s: 2000.0,
            roofline_pct: 50.0,
            roofline_tok_s: 3.0,
            weight_bytes: 1.25e9,
            kv_bytes_per_token: kv,
        };
        let md = markdown("m", 512, 128, 4e12, std::slice::from_ref(&r));
        assert!(md.contains("| 1250.0 | 11264 |"), "{md}");
        // A row written before the two fields existed reads back with zeros.
        let mut v = serde_json::to_value(&r).unwrap();
        v.as_object_mut().unwrap().retain(|k, _| k != "weight_bytes" && k != "kv_bytes_per_token");
        let old: BenchRow = serde_json::from_value(v).unwrap();
        assert_eq!((old.weight_bytes, old.kv_bytes_per_token), (0.0, 0.0));
    }
}
