//! `trtforge cuda-bench`: time to first token, decode throughput, achieved bandwidth and its share
//! of the measured memory roofline, per precision and batch size. Warm-up (kernel load, graph
//! capture) is excluded; timings end with a device synchronization; prompts are seeded.
use super::gpu::Gpu;
use super::{CudaBackend, CudaOptions, CudaPrecision};
use crate::backend::{Backend, SeqChunk};
use crate::error::{Error, Result};
use crate::model::weights::SplitMix64;
use crate::model::ModelWeights;
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
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
}

/// Device-to-device copy bandwidth (bytes read + written per second), the roofline used below.
pub fn copy_bandwidth(gpu: &Gpu) -> Result<f64> {
    let n = 1usize << 30;
    let a = gpu.alloc(n)?;
    let b = gpu.alloc(n)?;
    gpu.memset0(&a)?;
    let t = gpu.timer()?;
    let copy = || -> Result<()> {
        // SAFETY: both buffers hold n bytes.
        unsafe {
            cudarc::driver::result::memcpy_dtod_async(b.ptr(), a.ptr(), n, gpu.stream.cu_stream())
                .map_err(|e| Error::Gpu(format!("copy: {e:?}")))
        }
    };
    copy()?;
    gpu.sync()?;
    t.start()?;
    let reps = 10;
    for _ in 0..reps {
        copy()?;
    }
    let ms = t.stop_ms()?;
    Ok(2.0 * n as f64 * reps as f64 / (ms / 1e3))
}

fn prompts(n: usize, len: usize, vocab: usize, seed: u64) -> Vec<Vec<u32>> {
    (0..n)
        .map(|i| {
            let mut r = SplitMix64(seed.wrapping_add(i as u64 * 7919));
            (0..len).map(|_| 3 + (r.next_u64() % (vocab as u64 - 3)) as u32).collect()
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Benchmarks one precision at each batch size. `log` receives progress lines.
pub fn bench(
    w: &ModelWeights,
    precision: CudaPrecision,
    batches: &[usize],
    prompt_len: usize,
    new_tokens: usize,
    log: &mut dyn FnMut(&str),
) -> Result<(Vec<BenchRow>, f64)> {
    let max_b = batches.iter().copied().max().unwrap_or(1);
    let max_seq = prompt_len + new_tokens + 8;
    let t = Instant::now();
    let mut be = CudaBackend::new(w, CudaOptions::new(precision, max_b, max_seq))?;
    let (cs, cached) = be.compile_info();
    log(&format!(
        "{}: engine ready in {:.1} s (kernels {}), weights {:.1} MB",
        precision.name(),
        t.elapsed().as_secs_f64(),
        if cached { "from cache".to_string() } else { format!("compiled in {cs:.1} s") },
        be.weight_bytes as f64 / 1e6
    ));
    let bw = copy_bandwidth(be.gpu())?;
    let mut rows = vec![];
    for &b in batches {
        let ps = prompts(b, prompt_len, w.config.vocab_size, 42);
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
        for _ in 0..5 {
            let (ms, first) = run_prefill(&mut be)?;
            ttfts.push(ms);
            last = first.iter().enumerate().map(|(s, &t)| (s, t)).collect();
        }
        let ttft = median(ttfts);
        if b == 1 {
            if let Ok(p) = be.profile_prefill(&ps[0], 3) {
                let total: f64 = p.iter().map(|e| e.1).sum();
                let parts: Vec<String> = p.iter().map(|(k, ms)| format!("{k} {:.0} µs", ms * 1e3)).collect();
                log(&format!(
                    "{} prefill {prompt_len} eager {:.0} µs: {}",
                    precision.name(),
                    total * 1e3,
                    parts.join(", ")
                ));
            }
        }
        if let Ok(p) = be.profile_decode(b, 5) {
            let total: f64 = p.iter().map(|e| e.1).sum();
            let parts: Vec<String> = p.iter().map(|(k, ms)| format!("{k} {:.0} µs", ms * 1e3)).collect();
            log(&format!("{} bs{b} eager decode step {:.0} µs: {}", precision.name(), total * 1e3, parts.join(", ")));
        }
        let steps = new_tokens - 1;
        be.gpu().sync()?;
        let t0 = Instant::now();
        be.greedy_decode(&last, steps)?; // ends with a device-to-host copy
        let secs = t0.elapsed().as_secs_f64();
        let step_ms = secs * 1e3 / steps as f64;
        let mean_ctx = prompt_len as f64 + new_tokens as f64 / 2.0;
        let bytes = be.weight_bytes as f64 + b as f64 * mean_ctx * be.kv_bytes_per_token() as f64;
        let achieved = bytes / (step_ms / 1e3);
        let row = BenchRow {
            precision: precision.name(),
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
    }
    Ok((rows, bw))
}
