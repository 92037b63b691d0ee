//! `trtforge build`: an engine directory's ONNX → `model.engine`.
use crate::engine_dir::EngineConfig;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct BuildArgs {
    /// Engine config (YAML): its engine directory, build shapes/targets and tensorrt settings.
    #[arg(long, required_unless_present = "engine_dir", conflicts_with = "engine_dir")]
    pub config: Option<PathBuf>,
    /// An engine directory made by `trtforge convert` (settings from its manifest).
    #[arg(long)]
    pub engine_dir: Option<PathBuf>,
    /// Builder optimization level 0..=5 (overrides the config).
    #[arg(long, value_parser = super::values::opt_level, allow_negative_numbers = true)]
    pub opt_level: Option<u8>,
    /// Do not read or write the timing cache.
    #[arg(long)]
    pub no_timing_cache: bool,
    /// TensorRT messages to print: error, warning, info, verbose.
    #[arg(long, value_parser = super::values::trt_log)]
    pub trt_log: Option<String>,
    /// Do not print the builder's phases.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(a: BuildArgs) -> Result<()> {
    use crate::build::{build, BuildRequest};
    let (dir, mut req) = match (&a.config, &a.engine_dir) {
        (Some(c), _) => {
            let cfg = EngineConfig::load(c)?;
            (
                cfg.output_dir(),
                BuildRequest { build: Some(cfg.build.clone()), tensorrt: cfg.tensorrt.clone(), progress: true },
            )
        }
        (None, Some(d)) => (d.clone(), BuildRequest { progress: true, ..Default::default() }),
        (None, None) => bail!("give --config FILE or --engine-dir DIR"),
    };
    if a.opt_level.is_some() {
        req.tensorrt.optimization_level = a.opt_level;
    }
    if a.no_timing_cache {
        req.tensorrt.timing_cache = Some(false);
    }
    if a.trt_log.is_some() {
        req.tensorrt.log_level = a.trt_log.clone();
    }
    req.progress = !a.quiet;
    let r = build(&dir, &req, &mut |m| crate::util::errln!("{m}"))
        .with_context(|| format!("building a TensorRT engine for {}", dir.display()))?;
    crate::util::errln!("compilation cache: {:?}, timing cache: {:?}", r.section.build_cache, r.section.timing_cache);
    outln!("{}", r.engine.display())?;
    Ok(())
}
