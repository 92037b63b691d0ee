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
