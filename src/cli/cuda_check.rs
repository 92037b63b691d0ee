//! `trtforge cuda-check`: the CUDA engine against the CPU reference (for the GPU machine, which
//! has no cargo; `tests/cuda.rs` runs the same checks).
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct CudaCheckArgs {
    /// The tiny HF checkpoint fixture.
    #[arg(long, default_value = "tests/fixtures/tiny_llama")]
    pub tiny: PathBuf,
    /// SmolLM2 GGUF (optional): fp32 greedy ≥ 32 tokens, logits per precision, perplexity.
    #[arg(long)]
    smollm2: Option<PathBuf>,
    /// Text for the perplexity checks (needs --smollm2).
    #[arg(long, requires = "smollm2")]
    pub text: Option<PathBuf>,
    /// Also check the TinyLlama-1.1B and SmolLM2-135M shapes (random weights) against the CPU (slower).
    #[arg(long)]
    pub tinyllama: bool,
    /// Only check these engine directories (`trtforge convert` output): the CUDA engine on the
    /// stored weights vs the CPU backend and ONNX Runtime (logits, perplexity on random tokens).
    #[arg(long, num_args = 1..)]
    pub engine_dir: Vec<PathBuf>,
    /// Window length of the engine-dir perplexity checks.
    #[arg(long, default_value_t = 256)]
    pub engine_ctx: usize,
    /// Only the paged-KV checks (the engine `serve --backend cuda` runs): paged vs static engine,
    /// chunked vs one-shot prefill, among 63 others vs alone, logits vs CPU; with --tinyllama also
    /// at the TinyLlama shape.
    #[arg(long)]
    pub paged: bool,
}

pub fn run(a: CudaCheckArgs) -> Result<()> {
    use crate::eval::cuda_check::{run_checks, CheckSet};
    let set = CheckSet {
        tiny: a.tiny,
        smollm2: a.smollm2,
        text: a.text,
        tinyllama: a.tinyllama,
        engine_dirs: a.engine_dir,
        engine_ctx: a.engine_ctx,
        paged_only: a.paged,
    };
    if crate::eval::cuda_check::fp8kv_only() && crate::backend::cuda::gpu::precompiling() {
        // Fill the kernel cache for the fp8 / 8-bit-KV checks and benches, in parallel.
        for l in crate::eval::cuda_check::precompile_fp8kv(&set)? {
            outln!("{l}")?;
        }
        return Ok(());
    }
    // A stdout that cannot take a line is reported by the summary line's write below.
    let mut report = |r: &crate::eval::cuda_check::CheckResult| {
        let _ = outln!("{} {:<62} {}", if r.pass { "PASS" } else { "FAIL" }, r.name, r.detail);
    };
    // No GPU (and not just filling the kernel cache): one clear error now, not one failed check per engine after each
    // model's CPU-side preparation.
    crate::backend::cuda::gpu::probe_unless_precompiling()?;
    let mut results = if set.paged_only { vec![] } else { run_checks(&set, &mut report)? };
    if set.engine_dirs.is_empty() && !crate::eval::cuda_check::own_list_only() {
        // The paged KV cache (what `serve --backend cuda` runs) against the static engine and the CPU.
        results.extend(crate::eval::cuda_paged_check::run_paged_checks(&set, &mut report)?);
    }
    let failed = results.iter().filter(|r| !r.pass).count();
    outln!("{} passed, {failed} failed", results.len() - failed)?;
    if failed > 0 {
        bail!("{failed} CUDA checks failed");
    }
    Ok(())
}
