//! Running the Python oracles under tests/py/.
use std::path::Path;
use std::process::Command;

/// Whether a missing model or Python package must fail the test rather than skip it
/// (scripts/test.sh and CI set TRTFORGE_REQUIRE_MODELS=1).
pub fn required() -> bool {
    std::env::var("TRTFORGE_REQUIRE_MODELS").as_deref() == Ok("1")
}

/// True when `python3` can import every module in `modules`. When it cannot, prints why and
/// returns false, unless [`required`], where it panics: a skip must never hide a broken set-up.
pub fn have_modules(modules: &[&str]) -> bool {
    let code = modules.iter().map(|m| format!("import {m}")).collect::<Vec<_>>().join("; ");
    let ok = Command::new("python3").args(["-c", &code]).output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        let msg = format!("python3 cannot import {modules:?}; pip install -r tests/requirements.txt");
        assert!(!required(), "{msg}");
        eprintln!("SKIP: {msg}");
    }
    ok
}

/// Runs `python3 tests/py/<script> args...` from the repository root; panics with its output on failure.
pub fn run(script: &str, args: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(root.join("tests/py").join(script))
        .args(args)
        .current_dir(root)
        .output()
        .expect("running python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "tests/py/{script} {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
