//! The CUDA engine's command-line pieces: opening it for `generate`/`eval`, `cuda-bench` and
//! `cuda-check`. Kept here so the shared `cli.rs` only gains a few lines.
use super::bench::{bench, BenchRow};
use super::check::{self, CheckResult};
use super::{CudaBackend, CudaOptions, CudaPrecision};
use crate::model::load::load;
use crate::model::ModelWeights;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

/// Opens the CUDA engine for `generate` / `eval`.
pub fn open(w: &ModelWeights, p: CudaPrecision, max_batch: usize, max_seq: usize) -> Result<CudaBackend> {
    let t = Instant::now();
    let b = CudaBackend::new(w, CudaOptions::new(p, max_batch, max_seq))?;
    let (cs, cached) = b.compile_info();
    eprintln!(
        "opened the CUDA engine on {} ({}, {:.1} MB of weights) in {:.2} s{}",
        b.device_name(),
        p.name(),
        b.weight_bytes as f64 / 1e6,
        t.elapsed().as_secs_f64(),
        if cached { " (kernels from cache)".to_string() } else { format!(" (kernels compiled in {cs:.1} s)") }
    );
    Ok(b)
}

fn parse_list<T: std::str::FromStr>(s: &str, what: &str) -> Result<Vec<T>> {
    s.split(',').map(|x| x.trim().parse::<T>().map_err(|_| anyhow::anyhow!("bad {what} {x:?}"))).collect()
}

#[derive(Args)]
pub struct BenchArgs {
    /// A GGUF file, an HF checkpoint directory, or `preset:NAME[:SEED]`.
    #[arg(long, default_value = "preset:tinyllama-1.1b")]
    model: String,
    /// Comma-separated precisions: fp32, fp16, int8, int4.
    #[arg(long, default_value = "fp16")]
    precision: String,
    /// int4 group size.
    #[arg(long, default_value_t = 128)]
    group_size: usize,
    /// Comma-separated batch sizes.
    #[arg(long, default_value = "1")]
    batch: String,
    #[arg(long, default_value_t = 512)]
    prompt_len: usize,
    #[arg(long, default_value_t = 128)]
    new_tokens: usize,
    /// Also write the rows as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn cmd_bench(a: BenchArgs) -> Result<()> {
    let precs: Vec<String> = parse_list(&a.precision, "precision")?;
    let batches: Vec<usize> = parse_list(&a.batch, "batch size")?;
    if a.new_tokens < 2 || a.prompt_len == 0 {
        bail!("--new-tokens must be at least 2 and --prompt-len at least 1");
    }
    let t = Instant::now();
    let m = load(&a.model).with_context(|| format!("loading model {}", a.model))?;
    eprintln!("loaded {} in {:.1} s", m.source, t.elapsed().as_secs_f64());
    let mut rows: Vec<BenchRow> = vec![];
    let mut bw = 0.0;
    for p in &precs {
        let prec = CudaPrecision::parse(p, a.group_size)?;
        let (r, b) = bench(&m.weights, prec, &batches, a.prompt_len, a.new_tokens, &mut |s| eprintln!("{s}"))?;
        rows.extend(r);
        bw = b;
    }
    println!(
        "\nmodel {} | prompt {} | new tokens {} | roofline = measured D2D copy {:.0} GB/s",
        m.source,
        a.prompt_len,
        a.new_tokens,
        bw / 1e9
    );
    println!("| precision | batch | TTFT ms | prefill tok/s | decode tok/s | ms/step | GB/step | GB/s | % roofline | roofline tok/s |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.2} | {:.0} | {:.0} | {:.3} | {:.3} | {:.0} | {:.0} % | {:.0} |",
            r.precision,
            r.batch,
            r.ttft_ms,
            r.prefill_tok_s,
            r.decode_tok_s,
            r.step_ms,
            r.bytes_per_step / 1e9,
            r.achieved_gb_s,
            r.roofline_pct,
            r.roofline_tok_s
        );
    }
    if let Some(p) = &a.json {
        let v = serde_json::json!({ "model": m.source.to_string(), "copy_bandwidth_gb_s": bw / 1e9, "rows": rows });
        std::fs::write(p, serde_json::to_string_pretty(&v)?).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

#[derive(Args)]
pub struct CheckArgs {
    /// The tiny HF checkpoint fixture.
    #[arg(long, default_value = "tests/fixtures/tiny_llama")]
    tiny: PathBuf,
    /// SmolLM2 GGUF (optional): fp32 greedy ≥ 32 tokens, logits per precision, perplexity.
    #[arg(long)]
    smollm2: Option<PathBuf>,
    /// Text for the perplexity checks (needs --smollm2).
    #[arg(long)]
    text: Option<PathBuf>,
    /// Also check the TinyLlama-1.1B shape (random weights) against the CPU (slower).
    #[arg(long)]
    tinyllama: bool,
    /// Only check these engine directories (`trtforge convert` output): the CUDA engine on the
    /// stored weights vs the CPU backend and ONNX Runtime (logits, perplexity on random tokens).
    #[arg(long, num_args = 1..)]
    engine_dir: Vec<PathBuf>,
    /// Window length of the engine-dir perplexity checks.
    #[arg(long, default_value_t = 256)]
    engine_ctx: usize,
}

fn seeded_prompts(lens: &[usize], vocab: usize, seed: u64) -> Vec<Vec<u32>> {
    let mut r = crate::model::weights::SplitMix64(seed);
    lens.iter().map(|&n| (0..n).map(|_| 3 + (r.next_u64() % (vocab as u64 - 3)) as u32).collect()).collect()
}

pub fn cmd_check(a: CheckArgs) -> Result<()> {
    use CudaPrecision::*;
    if !a.engine_dir.is_empty() {
        let (mut n, mut failed) = (0, 0);
        for d in &a.engine_dir {
            for r in check::engine_dir_checks(d, a.engine_ctx, 2) {
                let r = r.unwrap_or_else(|e| CheckResult { name: "error".into(), pass: false, detail: e.to_string() });
                println!("{} {:<62} {}", if r.pass { "PASS" } else { "FAIL" }, r.name, r.detail);
                n += 1;
                failed += !r.pass as usize;
            }
        }
        println!("{} passed, {failed} failed", n - failed);
        if failed > 0 {
            bail!("{failed} CUDA checks failed");
        }
        return Ok(());
    }
    let mut results: Vec<CheckResult> = vec![];
    let mut report = |r: crate::Result<CheckResult>| {
        let r = r.unwrap_or_else(|e| CheckResult { name: "error".into(), pass: false, detail: e.to_string() });
        println!("{} {:<62} {}", if r.pass { "PASS" } else { "FAIL" }, r.name, r.detail);
        results.push(r);
    };
    let tiny = load(a.tiny.to_str().context("path")?)?;
    let w = &tiny.weights;
    let ps = seeded_prompts(&[5, 17, 40], w.config.vocab_size, 1);
    for p in [Fp32, Fp16, Int8] {
        report(check::logits_check("tiny_llama", w, p, &ps));
    }
    report(check::greedy_check("tiny_llama", w, Fp32, &ps, 40));
    report(check::gpu_loop_check("tiny_llama", w, Fp16, &ps, 24));
    let pt = load("preset:tiny")?;
    let ps2 = seeded_prompts(&[3, 12, 30], pt.weights.config.vocab_size, 2);
    for p in [Int4 { group: 32 }, Fp16] {
        report(check::logits_check("preset:tiny", &pt.weights, p, &ps2));
    }
    report(check::greedy_check("preset:tiny", &pt.weights, Int4 { group: 32 }, &ps2, 24));
    if a.tinyllama {
        let tl = load("preset:tinyllama-1.1b")?;
        let ps3 = seeded_prompts(&[20, 6], tl.weights.config.vocab_size, 3);
        for p in [Fp16, Int8, Int4 { group: 128 }] {
            report(check::logits_check("tinyllama-1.1b", &tl.weights, p, &ps3));
        }
        // SmolLM2 shape: hidden 576 with int4 g128 is stored padded to 640 (partial last group).
        let sm = load("preset:smollm2-135m")?;
        let ps4 = seeded_prompts(&[20, 6, 33], sm.weights.config.vocab_size, 4);
        for p in [Fp16, Int8, Int4 { group: 128 }] {
            report(check::logits_check("smollm2-135m", &sm.weights, p, &ps4));
        }
        report(check::greedy_check("smollm2-135m", &sm.weights, Int4 { group: 128 }, &ps4, 16));
    }
    if let Some(g) = &a.smollm2 {
        let m = load(g.to_str().context("path")?)?;
        let tok = m.tokenizer.as_ref().context("SmolLM2 GGUF without tokenizer")?;
        let texts = [
            "The capital of France is",
            "To be, or not to be, that is the question:",
            "Once upon a time, in a small village by the sea, there lived",
        ];
        let ps: Vec<Vec<u32>> = texts.iter().map(|t| tok.encode(t, true)).collect::<crate::Result<_>>()?;
        report(check::greedy_check("SmolLM2", &m.weights, Fp32, &ps, 48));
        // int4 g128: 576 inputs are padded to 640 in storage (a partial last group in the kernels).
        for p in [Fp32, Fp16, Int8, Int4 { group: 64 }, Int4 { group: 128 }] {
            report(check::logits_check("SmolLM2", &m.weights, p, &ps));
        }
        report(check::gpu_loop_check("SmolLM2", &m.weights, Fp16, &ps, 32));
        if let Some(t) = &a.text {
            let text = std::fs::read_to_string(t).with_context(|| format!("reading {}", t.display()))?;
            let ids = tok.encode(&text, false)?;
            for p in [Fp16, Int8, Int4 { group: 64 }, Int4 { group: 128 }] {
                report(check::ppl_check("SmolLM2", &m.weights, p, &ids, 512, 2));
            }
        }
    }
    let failed = results.iter().filter(|r| !r.pass).count();
    println!("{} passed, {failed} failed", results.len() - failed);
    if failed > 0 {
        bail!("{failed} CUDA checks failed");
    }
    Ok(())
}
