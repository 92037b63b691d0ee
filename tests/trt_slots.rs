//! The committed vtable slot tables are what scripts/trt_slots/gen.sh prints for the headers.
//! TensorRT-RTX 1.7's headers come from the `trtx-sys 0.9.1+rtx1.7` crate source (CI fetches it
//! with `cargo fetch` in a scratch project, see scripts/test.sh) or TRTFORGE_TRTX_HEADERS; TensorRT 10's
//! from TENSORRT_INCLUDE_DIR. Missing headers follow the suite's skip policy (`common::skip`).
mod common;
use common::{root, skip};
use std::path::PathBuf;
use std::process::Command;

/// trtx-sys's TensorRT-Headers directory in the cargo registry (or TRTFORGE_TRTX_HEADERS).
fn trtx_headers() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("TRTFORGE_TRTX_HEADERS") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .ok()?;
    let src = home.join("registry/src");
    for idx in std::fs::read_dir(&src).ok()?.flatten() {
        let p = idx.path().join("trtx-sys-0.9.1+rtx1.7/TensorRT-Headers");
        if p.is_dir() {
            return Some(p);
        }
    }
    None
}

fn gen(include: &std::path::Path, name: &str) -> Option<String> {
    let out = Command::new("bash").arg(root().join("scripts/trt_slots/gen.sh")).arg(include).arg(name).output();
    match out {
        Ok(o) if o.status.success() => Some(String::from_utf8(o.stdout).unwrap()),
        Ok(o) => {
            skip(format!("gen.sh failed: {}", String::from_utf8_lossy(&o.stderr)));
            None
        }
        Err(e) => {
            skip(format!("bash: {e}"));
            None
        }
    }
}

#[test]
fn rtx_1_7_table_matches_the_headers() {
    let Some(h) = trtx_headers() else {
        return skip("trtx-sys 0.9.1+rtx1.7 sources not found (cargo fetch it, or set TRTFORGE_TRTX_HEADERS)");
    };
    let Some(got) = gen(&h.join("TRT-RTX-1.7"), "rtx_1_7") else { return };
    let want = std::fs::read_to_string(root().join("src/trt/sys/slots_rtx_1_7.rs")).unwrap();
    assert_eq!(got, want, "regenerate with scripts/trt_slots/gen.sh");
}

#[test]
#[ignore = "needs the TensorRT 10 headers (not redistributable): set TENSORRT_INCLUDE_DIR and run with --include-ignored"]
fn trt_10_table_matches_the_headers() {
    let inc = std::env::var("TENSORRT_INCLUDE_DIR")
        .expect("TENSORRT_INCLUDE_DIR must point at TensorRT 10's include/ (NvInfer.h, NvOnnxParser.h)");
    let Some(got) = gen(std::path::Path::new(&inc), "trt_10") else { return };
    let want = std::fs::read_to_string(root().join("src/trt/sys/slots_trt_10.rs")).unwrap();
    // Every 10.x release prints the same slots; only the header version line differs.
    let strip = |s: &str| {
        s.lines()
            .filter(|l| !l.contains("header_version") && !l.starts_with("// Generated"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&got), strip(&want));
}
