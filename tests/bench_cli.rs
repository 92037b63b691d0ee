//! `trtforge bench` end to end on tiny engines: reports written, bad inputs refused, Ctrl-C keeps
//! what was measured.
mod common;
use common::*;
use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trtforge"))
}

fn convert(dir: &Path, name: &str, precision: &str) -> String {
    let cfg = dir.join(format!("{name}.yaml"));
    let out = dir.join(name);
    std::fs::write(
        &cfg,
        format!(
            "name: {name}\noutput_dir: {}\nmodel: {{path: {}}}\nquantization: {{precision: {precision}}}\nbuild: {{max_batch_size: 4, max_input_len: 64, max_seq_len: 128, opt_batch_size: 1}}\n",
            out.display(),
            fixture("tiny_llama").display()
        ),
    )
    .unwrap();
    let o = bin().args(["convert", "--config", cfg.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out.to_str().unwrap().to_string()
}

#[test]
fn bench_writes_every_report_and_records_unavailable_backends() {
    let t = tempfile::tempdir().unwrap();
    let a = convert(t.path(), "f32", "fp32");
    let b = convert(t.path(), "f16", "fp16");
    let text = t.path().join("text.txt");
    std::fs::write(
        &text,
        "Shall I compare thee to a summer's day? Thou art more lovely and more temperate. ".repeat(40),
    )
    .unwrap();
    let out = t.path().join("rep");
    let o = bin()
        .args([
            "bench",
            "--engine-dirs",
            &a,
            &b,
            "--backends",
            "cpu",
            "trt",
            "--batch-sizes",
            "1",
            "2",
            "--input-lens",
            "8",
        ])
        .args(["--output-len", "4", "--runs", "2", "--eval-ctx", "32", "--quality-tokens", "8", "--memory-sweep"])
        .args(["--sweep-batch-sizes", "1", "--sweep-seq-lens", "16", "--eval-text", text.to_str().unwrap()])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "results.json",
        "results.csv",
        "report.md",
        "tok_s_vs_batch.svg",
        "ttft_vs_input.svg",
        "memory.svg",
        "quality_vs_speed.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(v["schema_version"], 1);
    let speed = v["speed"].as_array().unwrap();
    assert_eq!(speed.len(), 2 * 2 * 2, "engines × backends × batch sizes");
    let ok: Vec<_> = speed.iter().filter(|r| r["status"] == "ok").collect();
    assert_eq!(ok.len(), 4);
    for r in &ok {
        assert!(r["decode_tok_s"]["median"].as_f64().unwrap() > 0.0);
        assert_eq!(r["decode_tok_s"]["n"], 2);
    }
    let trt: Vec<_> = speed.iter().filter(|r| r["backend"] == "trt").collect();
    assert!(trt.iter().all(|r| r["status"] == "unavailable" && r["reason"].as_str().unwrap().len() > 5));
    // Quality: the fp16 engine is the reference; the cpu backend runs source weights, so they agree.
    let q = v["quality"].as_array().unwrap();
    let f32_cpu = q.iter().find(|r| r["engine"] == "f32" && r["backend"] == "cpu").unwrap();
    assert_eq!(f32_cpu["reference_engine"], "f16");
    assert_eq!(f32_cpu["greedy_agreement"], 1.0);
    assert!(f32_cpu["perplexity"].as_f64().unwrap() > 1.0);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Not run here") && md.contains("f32 / trt"), "{md}");
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + speed.len());
}

#[test]
fn bench_bad_inputs() {
    let t = tempfile::tempdir().unwrap();
    let fails = |args: &[&str]| -> String {
        let o = bin().args(args).current_dir(t.path()).output().unwrap();
        let e = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(!o.status.success(), "{args:?}: {e}");
        assert!(!e.contains("panicked"), "{e}");
        e
    };
    let e = fails(&["bench", "--engine-dirs", "nope", "--out", "r"]);
    assert!(e.contains("nope") && e.contains("does not exist"), "{e}");

    let a = convert(t.path(), "x", "fp32");
    // A manifest from an incompatible trtforge version.
    let other = t.path().join("old");
    std::fs::create_dir(&other).unwrap();
    let m = std::fs::read_to_string(Path::new(&a).join("trtforge.json")).unwrap();
    std::fs::write(other.join("trtforge.json"), m.replace("\"schema_version\": 1", "\"schema_version\": 99")).unwrap();
    let e = fails(&["bench", "--engine-dirs", other.to_str().unwrap(), "--out", "r"]);
    assert!(e.contains("schema version") && e.contains("convert"), "{e}");

    // A manifest that does not match the files.
    let broken = t.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    for f in ["trtforge.json", "tokenizer.json"] {
        std::fs::copy(Path::new(&a).join(f), broken.join(f)).unwrap();
    }
    std::fs::write(broken.join("model.onnx"), b"truncated").unwrap();
    let e = fails(&["bench", "--engine-dirs", broken.to_str().unwrap(), "--out", "r"]);
    assert!(e.contains("model.onnx") && e.contains("does not match the manifest"), "{e}");

    // --out never overwrites a user's files of a report's names, nor writes into an engine dir; a report
    // written before is replaced.
    std::fs::create_dir(t.path().join("mine")).unwrap();
    std::fs::write(t.path().join("mine/report.md"), b"my notes").unwrap();
    let e = fails(&["bench", "--engine-dirs", &a, "--backends", "cpu", "--out", "mine"]);
    assert!(e.contains("mine") && e.contains("report.md") && e.contains("overwritten"), "{e}");
    assert_eq!(std::fs::read(t.path().join("mine/report.md")).unwrap(), b"my notes");
    let e = fails(&["bench", "--engine-dirs", &a, "--backends", "cpu", "--out", &a]);
    assert!(e.contains("engine directory"), "{e}");
    let quick = ["bench", "--engine-dirs", &a, "--backends", "cpu", "--batch-sizes", "1", "--input-lens", "4"];
    for _ in 0..2 {
        let o = bin()
            .args(quick)
            .args(["--output-len", "2", "--runs", "1", "--warmup", "0", "--out", "again"])
            .current_dir(t.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert!(t.path().join("again/results.json").is_file());

    // An unwritable --out (its parent is a file).
    std::fs::write(t.path().join("file"), b"").unwrap();
    let e = fails(&["bench", "--engine-dirs", &a, "--out", "file/rep"]);
    assert!(e.contains("file/rep"), "{e}");

    // A failed run leaves no folder it made: not its --out, not the parents made for it, not `reports/`.
    let e = fails(&["bench", "--engine-dirs", "nope", "--out", "p/q/r"]);
    assert!(e.contains("nope"), "{e}");
    let e = fails(&["bench", "--engine-dirs", "nope"]);
    assert!(e.contains("nope"), "{e}");
    for d in ["r", "p", "reports"] {
        assert!(!t.path().join(d).exists(), "{d} left behind by a failed bench");
    }

    // Roofline mode: a prompt longer than the model's context, and a checkpoint stretched beyond its
    // trained context, are refused before any GPU work (the fixture's config says 512 positions).
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny_llama");
    let e = fails(&["bench", "--model", fixture, "--input-lens", "500", "--output-len", "32"]);
    assert!(e.contains("532 tokens exceed") && e.contains("--max-model-len"), "{e}");
    let e = fails(&["bench", "--model", fixture, "--max-model-len", "4096"]);
    assert!(e.contains("exceeds") && e.contains("(512)"), "{e}");
}

/// Starts a long CPU bench of `engines` (plus `extra` flags), sends SIGINT to it alone after
/// `after_ms`, checks that it exits with 130 and returns its results.json.
fn interrupted_run(dir: &Path, engines: &[&str], extra: &[&str], after_ms: u64) -> serde_json::Value {
    let out = dir.join("rep");
    // Enough cells that the run is still going when the signal arrives.
    let mut child = bin()
        .args(["bench", "--engine-dirs"])
        .args(engines)
        .args(["--backends", "cpu", "--batch-sizes", "1", "2", "3", "4", "--input-lens", "16", "32", "48"])
        .args(["--output-len", "64", "--runs", "200", "--warmup", "0", "--out", out.to_str().unwrap()])
        .args(extra)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(after_ms));
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "interrupted runs exit with 130");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(v["interrupted"], true);
    assert!(std::fs::read_to_string(out.join("report.md")).unwrap().contains("Interrupted"));
    v
}

#[test]
fn ctrl_c_keeps_what_was_measured() {
    let t = tempfile::tempdir().unwrap();
    let a = convert(t.path(), "x", "fp32");
    let v = interrupted_run(t.path(), &[&a], &[], 1500);
    let speed = v["speed"].as_array().unwrap();
    assert_eq!(speed.len(), 12, "every cell is listed");
    assert!(speed.iter().any(|r| r["status"] == "interrupted"));
}

/// `--isolate always`: every engine and backend measured by a child `trtforge bench` process, read
/// back and merged — the same cells, the same deterministic CPU perplexity and agreement as in one
/// process. `auto` with two CUDA engines runs them apart too (here, without a GPU, each child
/// reports the backend as unavailable with its reason).
#[test]
fn engines_measured_in_processes_of_their_own() {
    let t = tempfile::tempdir().unwrap();
    let a = convert(t.path(), "f32", "fp32");
    let b = convert(t.path(), "f16", "fp16");
    let text = t.path().join("text.txt");
    std::fs::write(&text, "Now is the winter of our discontent made glorious summer by this sun of York. ".repeat(30))
        .unwrap();
    let run = |isolate: &str, backends: &[&str], out: &str| -> (serde_json::Value, String) {
        let out = t.path().join(out);
        let o = bin()
            .args(["bench", "--engine-dirs", &a, &b, "--isolate", isolate, "--backends"])
            .args(backends)
            .args(["--batch-sizes", "1", "2", "--input-lens", "8", "--output-len", "4", "--runs", "1"])
            .args(["--eval-ctx", "32", "--eval-windows", "2", "--quality-tokens", "6", "--memory-sweep"])
            .args(["--sweep-batch-sizes", "1", "--sweep-seq-lens", "16", "--eval-text", text.to_str().unwrap()])
            .args(["--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(o.status.success(), "{err}");
        let v = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
        (v, err)
    };
    let (apart, err) = run("always", &["cpu"], "apart");
    assert_eq!(err.matches("measured in a process of its own").count(), 2, "{err}");
    let (together, err) = run("never", &["cpu"], "together");
    assert!(!err.contains("process of its own"), "{err}");
    for key in ["speed", "quality", "memory_sweep"] {
        assert_eq!(apart[key].as_array().unwrap().len(), together[key].as_array().unwrap().len(), "{key}");
    }
    assert!(apart["speed"].as_array().unwrap().iter().all(|r| r["status"] == "ok"), "{apart}");
    for (x, y) in apart["quality"].as_array().unwrap().iter().zip(together["quality"].as_array().unwrap()) {
        assert_eq!(x["engine"], y["engine"]);
        assert_eq!(x["perplexity"], y["perplexity"], "a child measures what the parent would");
        assert_eq!(x["samples"], y["samples"]);
        assert_eq!(x["reference_engine"], "f16");
        assert_eq!(x["greedy_agreement"], y["greedy_agreement"]);
        assert!(x["greedy_agreement"].as_f64().is_some(), "agreement across child processes: {x}");
    }
    let sweep = apart["memory_sweep"].as_array().unwrap();
    assert!(sweep.iter().all(|r| r["status"] == "ok" && r["host_peak_rss_bytes"].as_u64().unwrap() > 0), "{sweep:?}");

    // auto: two CUDA engines, each in a child process; cpu stays in this one.
    let (v, err) = run("auto", &["cpu", "cuda"], "auto");
    assert_eq!(err.matches("on cuda: measured in a process of its own").count(), 2, "{err}");
    assert!(!err.contains("on cpu: measured"), "{err}");
    let cuda: Vec<_> = v["speed"].as_array().unwrap().iter().filter(|r| r["backend"] == "cuda").collect();
    assert_eq!(cuda.len(), 4, "2 engines × 2 batch sizes");
    for r in cuda {
        let why = r["reason"].as_str().unwrap_or("");
        assert!(r["status"] == "ok" || (r["status"] == "unavailable" && why.contains("GPU")), "{r}");
    }
}

/// A Ctrl-C sent to the parent alone is passed on to the running child, which finishes its cell;
/// every cell is still listed and the run exits with 130.
#[test]
fn ctrl_c_reaches_a_bench_child_process() {
    let t = tempfile::tempdir().unwrap();
    let a = convert(t.path(), "x", "fp32");
    let b = convert(t.path(), "y", "fp16");
    let v = interrupted_run(t.path(), &[&a, &b], &["--isolate", "always"], 2500);
    let speed = v["speed"].as_array().unwrap();
    assert_eq!(speed.len(), 24, "every cell of both engines is listed");
    assert!(speed.iter().filter(|r| r["engine"] == "y").all(|r| r["status"] == "interrupted"), "{speed:?}");
}
