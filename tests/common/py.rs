//! Running the Python oracles under tests/py/.
use std::path::Path;
use std::process::Command;

/// True when `python3` can import every module in `modules`; otherwise false after the suite's
/// skip policy ([`super::skip`]: a failure under TRTFORGE_REQUIRE_MODELS=1).
pub fn have_modules(modules: &[&str]) -> bool {
    let code = modules.iter().map(|m| format!("import {m}")).collect::<Vec<_>>().join("; ");
    let ok = Command::new("python3").args(["-c", &code]).output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        super::skip(format!("python3 cannot import {modules:?}; pip install -r tests/requirements.txt"));
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
