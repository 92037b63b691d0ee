//! Generates the ONNX protobuf types from proto/onnx.proto (copied from the `onnx` PyPI package,
//! IR version 14) with a pure-Rust proto compiler: no protoc, no C++ toolchain.
fn main() {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    println!("cargo:rerun-if-changed=build.rs");
    // The commit goes into bench reports; "unknown" outside a git checkout.
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    // Built from uncommitted sources: say so (the sources are watched below, so this re-runs).
    let dirty = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no", "--", "src", "build.rs", "Cargo.toml", "Cargo.lock"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| !o.stdout.is_empty());
    let commit = if dirty { format!("{commit}-dirty") } else { commit };
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rustc-env=TRTFORGE_GIT_COMMIT={commit}");
    // A commit moves the branch's ref, not HEAD (a symbolic ref): watch the ref too.
    let mut watch = vec![".git/HEAD".to_string(), ".git/index".to_string(), ".git/packed-refs".to_string()];
    if let Some(r) =
        std::fs::read_to_string(".git/HEAD").ok().and_then(|h| h.strip_prefix("ref: ").map(|r| r.trim().to_string()))
    {
        watch.push(format!(".git/{r}"));
    }
    for p in watch {
        if std::path::Path::new(&p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    let fds = match protox::compile(["proto/onnx.proto"], ["proto"]) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("failed to compile proto/onnx.proto: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = prost_build::Config::new().compile_fds(fds) {
        eprintln!("failed to generate ONNX types: {e}");
        std::process::exit(1);
    }
}
