//! `trtforge bench serve`: parsing only; the load generator is crate::bench::serve.
use crate::bench::serve::{Load, ServeBenchSettings};
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct BenchServeArgs {
    /// Base URL of a running OpenAI-compatible server (`trtforge serve`, vLLM, trtllm-serve...).
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: String,
    /// Model name to request (default: the first of the server's /v1/models).
    #[arg(long)]
    model: Option<String>,
    /// Poisson request rates to run, in requests/s (`inf`: all at once). Comma- or space-separated.
    #[arg(long, num_args = 1.., value_delimiter = ',')]
    request_rates: Vec<String>,
    /// Fixed-concurrency levels to run (clients that each send the next request when one ends).
    #[arg(long, num_args = 1.., value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// Requests per level.
    #[arg(long, default_value_t = 200)]
    num_prompts: usize,
    /// Warm-up requests before the first level (not reported).
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Folder of .txt files for prompts and output lengths.
    #[arg(long, default_value = "models/shakespeare")]
    texts: PathBuf,
    /// Longest prompt, in words (the client has no tokenizer; `usage` reports real tokens).
    #[arg(long, default_value_t = 400)]
    max_prompt_words: usize,
    #[arg(long, default_value_t = 8)]
    min_output_tokens: usize,
    #[arg(long, default_value_t = 256)]
    max_output_tokens: usize,
    /// Every request generates exactly this many tokens instead of a drawn length.
    #[arg(long)]
    output_tokens: Option<usize>,
    /// Goodput SLO: time to first token, ms.
    #[arg(long, default_value_t = 500.0)]
    slo_ttft_ms: f64,
    /// Goodput SLO: mean time per output token of a request, ms.
    #[arg(long, default_value_t = 50.0)]
    slo_tpot_ms: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Per-request timeout, seconds.
    #[arg(long, default_value_t = 600.0)]
    timeout: f64,
    /// `trtforge bench --json` results to hold each --concurrency level against (the row at batch
    /// = concurrency, the prompt length nearest the served prompts'): prints the ratios of issue
    /// #12's target, against the static decode and end-to-end rates. Repeatable.
    #[arg(long)]
    static_json: Vec<PathBuf>,
    /// Precision of the static rows to compare with (default: the first at that batch).
    #[arg(long)]
    static_precision: Option<String>,
    /// Report directory (default: reports/serve-<timestamp>/).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(a: BenchServeArgs) -> Result<()> {
    let mut loads = Vec::new();
    for r in &a.request_rates {
        let v: f64 = match r.trim() {
            "inf" | "infinity" => f64::INFINITY,
            x => x.parse().with_context(|| format!("--request-rates: {x:?} is not a number or inf"))?,
        };
        loads.push(Load::Rate(v));
    }
    loads.extend(a.concurrency.iter().map(|&c| Load::Concurrency(c)));
    if loads.is_empty() {
        loads = vec![Load::Concurrency(1), Load::Concurrency(8), Load::Rate(f64::INFINITY)];
    }
    let s = ServeBenchSettings {
        url: a.url,
        model: a.model,
        loads,
        num_prompts: a.num_prompts,
        warmup: a.warmup,
        texts: a.texts,
        max_prompt_words: a.max_prompt_words,
        min_output_tokens: a.min_output_tokens,
        max_output_tokens: a.max_output_tokens,
        fixed_output_tokens: a.output_tokens,
        slo_ttft_ms: a.slo_ttft_ms,
        slo_tpot_ms: a.slo_tpot_ms,
        seed: a.seed,
        timeout_s: a.timeout,
    };
    let command = super::command_line();
    let mut docs = Vec::new();
    for p in &a.static_json {
        let text = crate::util::read_text(p, None)?;
        let doc: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{} is not JSON", p.display()))?;
        docs.push((p.display().to_string(), doc));
    }
    // Before the load test, not after it: --out checked, made, proven writable and locked (or a
    // new default directory made for this run alone); one made here is removed if the run fails.
    let dir = crate::bench::report::ReportDir::claim(a.out.as_deref(), "serve-", &crate::bench::serve::REPORT_FILES)?;
    let mut res = match crate::bench::serve::run(&s, &command, &mut |m| crate::util::errln!("{m}")) {
        Ok(r) => r,
        Err(e) => {
            dir.abandon();
            return Err(e.into());
        }
    };
    for (src, doc) in &docs {
        let found = crate::bench::serve::compare_static(&res, doc, src, a.static_precision.as_deref())?;
        if found.is_empty() {
            crate::util::errln!("{src}: no row at a batch equal to a --concurrency level: nothing to compare");
        }
        res.static_comparison.extend(found);
    }
    for line in crate::bench::serve::static_lines(&res) {
        crate::util::errln!("{line}");
    }
    // The measurements reach stdout first, whatever happens to the files.
    super::out(crate::bench::serve::markdown(&res))?;
    for f in crate::bench::serve::write_all(&res, &dir.path)? {
        crate::util::errln!("wrote {}", f.display());
    }
    let failed: usize = res.levels.iter().map(|l| l.failed).sum();
    if failed > 0 {
        anyhow::bail!("{failed} requests failed (see the report)");
    }
    Ok(())
}
