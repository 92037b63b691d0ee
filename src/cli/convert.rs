//! `trtforge convert`: a YAML config → an engine directory.
use crate::engine_dir::EngineConfig;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct ConvertArgs {
    /// Engine config (YAML).
    #[arg(long)]
    pub config: PathBuf,
    /// Replace an existing output directory.
    #[arg(long)]
    pub force: bool,
}

pub fn run(a: ConvertArgs) -> Result<()> {
    let cfg = EngineConfig::load(&a.config)?;
    let t = Instant::now();
    let out = crate::convert::convert(&cfg, a.force, &mut |msg| crate::util::errln!("{msg}"))?;
    crate::util::errln!("converted in {:.1} s", t.elapsed().as_secs_f64());
    outln!("{}", out.display())?;
    Ok(())
}
