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

/// Path of a file under `models/` (fetched by scripts/fetch_models.sh). Returns None and prints why
/// when it is absent, unless TRTFORGE_REQUIRE_MODELS=1 (set by scripts/test.sh and CI), where a
/// missing model is a failure: a skip must never hide a broken set-up.
pub fn model_file(rel: &str) -> Option<PathBuf> {
    let p = root().join("models").join(rel);
    if p.exists() {
        return Some(p);
    }
    if std::env::var("TRTFORGE_REQUIRE_MODELS").as_deref() == Ok("1") {
        panic!("{} is missing; run scripts/fetch_models.sh", p.display());
    }
    eprintln!("SKIP: {} is missing (run scripts/fetch_models.sh)", p.display());
    None
}

pub const SMOLLM2_GGUF: &str = "smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf";

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}
