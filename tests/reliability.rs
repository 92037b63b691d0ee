//! Reliability (issue #14): nothing a user types may lose their files, crash, hang or lie.
//!
//! Every test runs the release binary as a user would. The bad inputs (corrupt and truncated GGUFs,
//! broken HF/safetensors directories, bad YAML configs, absurd flag values) are generated here at
//! test time from the format specs, not committed as blobs. One test per fault of the issue
//! (`fault_NN_...`), then the corpus sweeps.
mod common;
use common::*;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_trtforge");
/// No single run here should take longer; a hang is a failure, not a stuck CI job.
const RUN_LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Running the binary

struct Run {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

fn spawn(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> std::process::Child {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn trtforge")
}

/// Runs with a time limit; a run past it is killed and fails the test as a hang.
fn run_env(args: &[&str], cwd: &Path, env: &[(&str, &str)], limit: Duration) -> Run {
    let t = Instant::now();
    finish(spawn(args, cwd, env), &args, t, limit)
}

/// Runs any command (its stdout and stderr piped) to the end, with [`run_env`]'s time limit.
fn run_command(cmd: &mut Command, what: &dyn std::fmt::Debug) -> Run {
    let t = Instant::now();
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    finish(child, what, t, RUN_LIMIT)
}

fn finish(mut child: std::process::Child, args: &dyn std::fmt::Debug, t: Instant, limit: Duration) -> Run {
    // Either may be a file instead of a pipe (see `run_full`).
    let (so, se) = (child.stdout.take(), child.stderr.take());
    let ro = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = so.map(|mut p| p.read_to_end(&mut s));
        s
    });
    let re = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = se.map(|mut p| p.read_to_end(&mut s));
        s
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} hung (killed after {limit:?})");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    use std::os::unix::process::ExitStatusExt;
    Run {
        code: status.code(),
        signal: status.signal(),
        stdout: String::from_utf8_lossy(&ro.join().unwrap()).into(),
        stderr: String::from_utf8_lossy(&re.join().unwrap()).into(),
        elapsed: t.elapsed(),
    }
}

fn run(args: &[&str], cwd: &Path) -> Run {
    run_env(args, cwd, &[], RUN_LIMIT)
}

/// Expects a clean failure: exit code 1 (ours) or 2 (clap's usage errors), an `error:` line, no
/// panic, no abort; returns stderr.
fn fails(args: &[&str], cwd: &Path) -> String {
    fails_env(args, cwd, &[])
}

fn fails_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> String {
    let r = run_env(args, cwd, env, RUN_LIMIT);
    assert_clean_failure(&args, &r);
    r.stderr
}

fn assert_clean_failure(what: &dyn std::fmt::Debug, r: &Run) {
    assert!(
        matches!(r.code, Some(1) | Some(2)),
        "{what:?}: expected exit 1 or 2, got {:?} (signal {:?}); stderr: {}",
        r.code,
        r.signal,
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "{what:?} panicked: {}", r.stderr);
    assert!(r.stderr.contains("error"), "{what:?}: no error message: {}", r.stderr);
}

fn succeeds(args: &[&str], cwd: &Path) -> Run {
    let r = run(args, cwd);
    assert!(r.ok(), "{args:?} failed ({:?}): {}", r.code, r.stderr);
    r
}

fn tiny() -> String {
    fixture("tiny_llama").to_str().unwrap().into()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// No trtforge temporary anywhere under `dir`.
fn assert_no_temporaries(dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            assert!(
                !n.contains(".trtforge-tmp-") && !n.contains(".tmp-") && !n.ends_with(".old"),
                "left behind: {}",
                e.path().display()
            );
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
}

fn write_cfg(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.to_str().unwrap().into()
}

/// A small engine config for `model`, writing to `out`.
fn cfg_for(model: &str, out: &str, extra: &str) -> String {
    format!(
        "name: e\noutput_dir: {out}\nmodel:\n  path: {model}\nbuild:\n  max_batch_size: 2\n  max_input_len: 16\n  max_seq_len: 32\n  opt_batch_size: 1\n{extra}"
    )
}

/// Converts the tiny checkpoint into `dir/<out>` (fp16) and returns the engine dir.
fn convert_tiny(dir: &Path, out: &str) -> PathBuf {
    let c = write_cfg(dir, &format!("{out}.yaml"), &cfg_for(&tiny(), out, "quantization: {precision: fp16}\n"));
    succeeds(&["convert", "--config", &c], dir);
    dir.join(out)
}

fn text_file(dir: &Path) -> String {
    let p = dir.join("t.txt");
    let line = "Shall I compare thee to a summer's day? Thou art more lovely and more temperate.\n";
    std::fs::write(&p, line.repeat(40)).unwrap();
    p.to_str().unwrap().into()
}

// ---------------------------------------------------------------------------------------------
// Generators for the bad-input corpus (formats from their specs; nothing from trtforge)

/// Deterministic bytes.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn f32s(&mut self, n: usize, scale: f32) -> Vec<u8> {
        (0..n).flat_map(|_| (((self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale).to_le_bytes()).collect()
    }
}

fn gguf_str(s: &str) -> Vec<u8> {
    let mut b = (s.len() as u64).to_le_bytes().to_vec();
    b.extend(s.as_bytes());
    b
}

/// A tiny llama GGUF v3 (F32 weights, llama.cpp tensor names, a byte-level gpt2 vocab).
fn tiny_gguf() -> Vec<u8> {
    const ALIGN: usize = 32;
    let (vocab, hidden, inter, layers, heads, kv_heads) = (256u64, 64u64, 128u64, 2, 4u32, 2u32);
    let kv_dim = hidden / heads as u64 * kv_heads as u64;
    let mut kv: Vec<(String, u32, Vec<u8>)> = Vec::new();
    let mut u32kv = |k: &str, v: u32| kv.push((k.into(), 4, v.to_le_bytes().to_vec()));
    u32kv("llama.block_count", layers);
    u32kv("llama.embedding_length", hidden as u32);
    u32kv("llama.feed_forward_length", inter as u32);
    u32kv("llama.attention.head_count", heads);
    u32kv("llama.attention.head_count_kv", kv_heads);
    u32kv("llama.context_length", 256);
    u32kv("tokenizer.ggml.bos_token_id", 1);
    u32kv("tokenizer.ggml.eos_token_id", 2);
    kv.push(("llama.rope.freq_base".into(), 6, 10000f32.to_le_bytes().to_vec()));
    kv.push(("llama.attention.layer_norm_rms_epsilon".into(), 6, 1e-5f32.to_le_bytes().to_vec()));
    kv.push(("general.architecture".into(), 8, gguf_str("llama")));
    kv.push(("tokenizer.ggml.model".into(), 8, gguf_str("gpt2")));
    let mut toks = 8u32.to_le_bytes().to_vec();
    toks.extend(vocab.to_le_bytes());
    for i in 0..vocab {
        toks.extend(gguf_str(&format!("<{i:02x}>")));
    }
    kv.push(("tokenizer.ggml.tokens".into(), 9, toks));
    // No merges, but the key: a byte-level BPE file without it is refused, as llama.cpp refuses it.
    let mut merges = 8u32.to_le_bytes().to_vec();
    merges.extend(0u64.to_le_bytes());
    kv.push(("tokenizer.ggml.merges".into(), 9, merges));
    let mut tensors: Vec<(String, Vec<u64>)> =
        vec![("token_embd.weight".into(), vec![hidden, vocab]), ("output_norm.weight".into(), vec![hidden])];
    tensors.push(("output.weight".into(), vec![hidden, vocab]));
    for l in 0..layers {
        for (n, d) in [
            ("attn_norm", vec![hidden]),
            ("attn_q", vec![hidden, hidden]),
            ("attn_k", vec![hidden, kv_dim]),
            ("attn_v", vec![hidden, kv_dim]),
            ("attn_output", vec![hidden, hidden]),
            ("ffn_norm", vec![hidden]),
            ("ffn_gate", vec![hidden, inter]),
            ("ffn_up", vec![hidden, inter]),
            ("ffn_down", vec![inter, hidden]),
        ] {
            tensors.push((format!("blk.{l}.{n}.weight"), d));
        }
    }
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend((tensors.len() as u64).to_le_bytes());
    b.extend((kv.len() as u64).to_le_bytes());
    for (k, ty, v) in &kv {
        b.extend(gguf_str(k));
        b.extend(ty.to_le_bytes());
        b.extend(v);
    }
    let mut rng = Rng(7);
    let data: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(n, d)| {
            let numel = d.iter().product::<u64>() as usize;
            if n.contains("norm") {
                1f32.to_le_bytes().repeat(numel)
            } else {
                rng.f32s(numel, 0.2)
            }
        })
        .collect();
    let mut offset = 0usize;
    for ((name, dims), bytes) in tensors.iter().zip(&data) {
        b.extend(gguf_str(name));
        b.extend((dims.len() as u32).to_le_bytes());
        dims.iter().for_each(|d| b.extend(d.to_le_bytes()));
        b.extend(0u32.to_le_bytes()); // F32
        b.extend((offset as u64).to_le_bytes());
        offset = (offset + bytes.len()).next_multiple_of(ALIGN);
    }
    for bytes in &data {
        b.resize(b.len().next_multiple_of(ALIGN), 0);
        b.extend(bytes);
    }
    b
}

/// Copies the tiny HF checkpoint into `dir`.
fn copy_tiny(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for e in std::fs::read_dir(fixture("tiny_llama")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
}

/// (header length, header JSON) of a safetensors file.
fn safetensors_header(bytes: &[u8]) -> (usize, serde_json::Value) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (n, serde_json::from_slice(&bytes[8..8 + n]).unwrap())
}

/// Overwrites one tensor of an F32 safetensors file with `v` everywhere.
fn fill_safetensor(path: &Path, name: &str, v: f32) {
    let mut bytes = std::fs::read(path).unwrap();
    let (n, h) = safetensors_header(&bytes);
    assert_eq!(h[name]["dtype"], "F32", "{name}");
    let off = &h[name]["data_offsets"];
    let (s, e) = (off[0].as_u64().unwrap() as usize + 8 + n, off[1].as_u64().unwrap() as usize + 8 + n);
    for c in bytes[s..e].chunks_exact_mut(4) {
        c.copy_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The 18 faults of issue #14

#[test]
fn fault_01_convert_force_never_deletes_user_files() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    // A user's directory in the way.
    std::fs::create_dir_all(d.join("x/important")).unwrap();
    std::fs::write(d.join("x/important/thesis.txt"), b"years of work").unwrap();
    let c = write_cfg(d, "c.yaml", &cfg_for(&tiny(), "x/important", ""));
    let e = fails(&["convert", "--config", &c, "--force"], d);
    assert!(e.contains("x/important") && e.contains("engine"), "{e}");
    assert_eq!(std::fs::read(d.join("x/important/thesis.txt")).unwrap(), b"years of work");
    assert_eq!(names_in(&d.join("x")), vec!["important"]);
    assert_eq!(names_in(&d.join("x/important")), vec!["thesis.txt"]);

    // A file in the way.
    std::fs::write(d.join("notes"), b"mine").unwrap();
    let c = write_cfg(d, "c.yaml", &cfg_for(&tiny(), "notes", ""));
    fails(&["convert", "--config", &c, "--force"], d);
    assert_eq!(std::fs::read(d.join("notes")).unwrap(), b"mine");

    // An engine dir trtforge wrote is replaced with --force; one with a user's file added is not.
    let e1 = convert_tiny(d, "eng");
    let c = write_cfg(d, "eng.yaml", &cfg_for(&tiny(), "eng", ""));
    succeeds(&["convert", "--config", &c, "--force"], d);
    std::fs::write(e1.join("my-notes.md"), b"keep me").unwrap();
    let e = fails(&["convert", "--config", &c, "--force"], d);
    assert!(e.contains("my-notes.md"), "{e}");
    assert_eq!(std::fs::read(e1.join("my-notes.md")).unwrap(), b"keep me");
    // A user's directory under the name of a file the manifest lists is not removed either.
    std::fs::remove_file(e1.join("my-notes.md")).unwrap();
    std::fs::remove_file(e1.join("tokenizer_config.json")).unwrap();
    std::fs::create_dir(e1.join("tokenizer_config.json")).unwrap();
    std::fs::write(e1.join("tokenizer_config.json/keep.txt"), b"precious").unwrap();
    let e = fails(&["convert", "--config", &c, "--force"], d);
    assert!(e.contains("tokenizer_config.json") && e.contains("directories"), "{e}");
    assert_eq!(std::fs::read(e1.join("tokenizer_config.json/keep.txt")).unwrap(), b"precious");
    // An empty directory holds nothing to lose.
    std::fs::create_dir(d.join("empty")).unwrap();
    let c = write_cfg(d, "c.yaml", &cfg_for(&tiny(), "empty", ""));
    succeeds(&["convert", "--config", &c, "--force"], d);
    assert!(d.join("empty/trtforge.json").exists());
    assert_no_temporaries(d);
}

/// stdout is a pipe whose reader is already gone.
fn closed_stdout(args: &[&str], cwd: &Path) -> Run {
    let t = Instant::now();
    let mut child = spawn(args, cwd, &[]);
    drop(child.stdout.take());
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    Run { code: status.code(), signal: status.signal(), stdout: String::new(), stderr: err, elapsed: t.elapsed() }
}

#[test]
fn fault_02_closed_stdout_ends_quietly() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let text = text_file(d);
    let c = write_cfg(d, "c.yaml", &cfg_for(&tiny(), "e", ""));
    let cmds: Vec<Vec<&str>> = vec![
        vec!["info", "--model", "preset:tiny"],
        vec!["info", "--model", "preset:tiny", "--json"],
        vec!["eval", "--model", tiny().leak(), "--text", &text, "--ctx", "16", "--windows", "1"],
        vec!["generate", "--model", tiny().leak(), "--prompt", "Shall I", "--greedy", "--max-new-tokens", "4"],
        vec!["convert", "--config", &c],
        vec!["--help"],
    ];
    for args in cmds {
        let r = closed_stdout(&args, d);
        // Quiet, as Unix tools are: killed by SIGPIPE (the shell's 141) or exit 0.
        assert!(
            r.code == Some(0) || r.signal == Some(libc::SIGPIPE),
            "{args:?}: {:?}/{:?} {}",
            r.code,
            r.signal,
            r.stderr
        );
        assert!(!r.stderr.contains("panicked") && !r.stderr.contains("Broken pipe"), "{args:?}: {}", r.stderr);
    }
    // convert finished its work before printing the path.
    assert!(d.join("e/trtforge.json").exists());
}

#[test]
fn fault_03_int4_group_size_zero_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    for g in ["0", "7", "48"] {
        let args = [
            "generate",
            "--model",
            "preset:tiny",
            "--backend",
            "cuda",
            "--precision",
            "int4",
            "--group-size",
            g,
            "--prompt-ids",
            "1",
        ];
        let e = fails(&args, t.path());
        assert!(e.contains("group") && e.contains(g), "{e}");
    }
}

#[test]
fn fault_04_bench_length_overflow_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let e = convert_tiny(d, "eng");
    let e = e.to_str().unwrap();
    for (flag, v) in [("--output-len", "18446744073709551615"), ("--input-lens", "18446744073709551615")] {
        let err = fails(&["bench", "--engine-dirs", e, "--backends", "cpu", flag, v, "--out", "r"], d);
        assert!(err.contains(flag), "{err}");
    }
}

#[test]
fn fault_05_max_new_tokens_overflow_is_refused_at_once() {
    let t = tempfile::tempdir().unwrap();
    let r = run(
        &[
            "generate",
            "--model",
            "preset:tiny",
            "--prompt-ids",
            "1,2,3",
            "--greedy",
            "--max-new-tokens",
            "18446744073709551615",
        ],
        t.path(),
    );
    assert_clean_failure(&"max-new-tokens u64::MAX", &r);
    assert!(r.stderr.contains("max-new-tokens"), "{}", r.stderr);
    assert!(r.elapsed < Duration::from_secs(10), "took {:?}", r.elapsed);
}

#[test]
fn fault_06_threads_is_bounded() {
    let t = tempfile::tempdir().unwrap();
    for n in ["100000", "0"] {
        let r = run(&["info", "--threads", n, "--model", "preset:tiny"], t.path());
        assert_clean_failure(&n, &r);
        assert!(r.stderr.contains("--threads"), "{}", r.stderr);
        assert!(r.elapsed < Duration::from_secs(5), "took {:?}", r.elapsed);
    }
    succeeds(&["info", "--threads", "2", "--model", "preset:tiny"], t.path());
    // The same bound for rayon's environment variable, which would otherwise be taken unchecked.
    for n in ["100000", "0", "x"] {
        let r = run_env(
            &["generate", "--model", "preset:tiny", "--prompt-ids", "1", "--max-new-tokens", "2"],
            t.path(),
            &[("RAYON_NUM_THREADS", n)],
            Duration::from_secs(20),
        );
        assert_clean_failure(&n, &r);
        assert!(r.stderr.contains("RAYON_NUM_THREADS"), "{}", r.stderr);
    }
}

#[test]
fn fault_07_memory_sweep_beyond_the_engine_is_not_an_abort() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let e = convert_tiny(d, "eng");
    // 6 GB of address space: a 100,000-sequence KV cache would not fit.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 6000000; exec '{BIN}' bench --engine-dirs '{}' --backends cpu --runs 1 --warmup 0 --input-lens 4 \
             --output-len 2 --quality-tokens 2 --memory-sweep --sweep-batch-sizes 4000 2 --sweep-seq-lens 16 --out r",
            e.display()
        ))
        .current_dir(d)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?} {err}", out.status);
    let res: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("r/results.json")).unwrap()).unwrap();
    let sweep = res["memory_sweep"].as_array().unwrap();
    let big = sweep.iter().find(|r| r["batch"] == 4000).unwrap();
    assert_eq!(big["status"], "unavailable", "{big}");
    assert!(big["reason"].as_str().unwrap().contains("max_batch_size"), "{big}");
    let small = sweep.iter().find(|r| r["batch"] == 2).unwrap();
    assert_eq!(small["status"], "ok", "{small}");
    // Beyond any engine trtforge builds: a usage error at once.
    let err = fails(
        &[
            "bench",
            "--engine-dirs",
            e.to_str().unwrap(),
            "--memory-sweep",
            "--sweep-batch-sizes",
            "100000",
            "--out",
            "r2",
        ],
        d,
    );
    assert!(err.contains("--sweep-batch-sizes"), "{err}");
    assert!(!d.join("r2").exists());
}

/// Flips one byte in the middle of a file (same size, other contents).
fn flip_byte(p: &Path) {
    let mut b = std::fs::read(p).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x55;
    std::fs::write(p, b).unwrap();
}

#[test]
fn fault_08_edited_onnx_is_never_given_a_cached_engine() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let e = convert_tiny(d, "eng");
    flip_byte(&e.join("model.onnx"));
    // The check comes before TensorRT is even looked for.
    let err = fails_env(
        &["build", "--engine-dir", e.to_str().unwrap()],
        d,
        &[("TRTFORGE_TENSORRT_LIB", "/nonexistent/tensorrt")],
    );
    assert!(err.contains("model.onnx") && err.contains("changed"), "{err}");
}

#[test]
fn fault_09_build_after_rm_model_engine() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let e = convert_tiny(d, "eng");
    // What `build` leaves: model.engine listed in the manifest; then the user deletes the file.
    let mp = e.join("trtforge.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mp).unwrap()).unwrap();
    m["files"].as_array_mut().unwrap().push(serde_json::json!({"name": "model.engine", "bytes": 1234, "sha256": "00"}));
    std::fs::write(&mp, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let err = fails_env(
        &["build", "--engine-dir", e.to_str().unwrap()],
        d,
        &[("TRTFORGE_TENSORRT_LIB", "/nonexistent/tensorrt")],
    );
    assert!(!err.contains("model.engine"), "build must not need the engine it makes: {err}");
    assert!(err.to_lowercase().contains("tensorrt"), "{err}");
    // Other backends do not need it either.
    succeeds(&bench_args(e.to_str().unwrap(), &["--out", "r"]), d);
    succeeds(&["generate", "--engine-dir", e.to_str().unwrap(), "--prompt", "Shall", "--max-new-tokens", "2"], d);
}

/// Sets a path's modification time an hour into the past: what a temporary left by a `kill -9`
/// long ago looks like (sweeps spare recent ones: util::atomic::STALE_AFTER).
fn age(p: &Path) {
    let t = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::open(p).unwrap().set_modified(t).unwrap();
}

/// Waits until a trtforge temporary appears under `dir` (or the child exits).
fn wait_for_temporary(child: &mut std::process::Child, dir: &Path, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if names_in(dir).iter().any(|n| n.contains(".trtforge-tmp-")) {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

#[test]
fn fault_10_interrupts_and_size_limits_leave_no_temporaries() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    // A preset large enough (135 M parameters, ~270 MB fp16) to be interrupted while it writes.
    let body = "name: big\noutput_dir: out/big\nmodel: {path: \"preset:smollm2-135m\"}\nquantization: {precision: fp16}\nbuild: {max_batch_size: 1, max_input_len: 16, max_seq_len: 32, opt_batch_size: 1}\n";
    let c = write_cfg(d, "big.yaml", body);
    std::fs::create_dir(d.join("out")).unwrap();
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let mut child = Command::new(BIN)
            .args(["convert", "--config", &c])
            .current_dir(d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let caught = wait_for_temporary(&mut child, &d.join("out"), Duration::from_secs(120));
        assert!(caught, "convert finished before it could be interrupted");
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
        let st = child.wait().unwrap();
        assert!(!st.success(), "{st:?}");
        assert_eq!(names_in(&d.join("out")), Vec::<String>::new(), "after signal {sig}");
    }
    // kill -9 cannot be caught: the next run sweeps what it left (only trtforge's, from dead PIDs).
    std::fs::create_dir(d.join("out/.big.trtforge-tmp-2147483632")).unwrap();
    std::fs::write(d.join("out/.big.trtforge-tmp-2147483632/model.onnx"), b"partial").unwrap();
    age(&d.join("out/.big.trtforge-tmp-2147483632"));
    std::fs::write(d.join("out/.keep.tmp-2147483632"), b"not ours").unwrap();
    let c2 = write_cfg(d, "tiny.yaml", &cfg_for(&tiny(), "out/tiny", ""));
    succeeds(&["convert", "--config", &c2], d);
    assert_eq!(names_in(&d.join("out")), vec![".keep.tmp-2147483632", "tiny"]);
    std::fs::remove_file(d.join("out/.keep.tmp-2147483632")).unwrap();

    // A file-size limit (EFBIG) during convert and during bench's report.
    let e = convert_tiny(d, "eng");
    for cmd in [
        format!("'{BIN}' convert --config '{c}'"),
        format!(
            "'{BIN}' bench --engine-dirs '{}' --backends cpu --runs 1 --warmup 0 --input-lens 4 --output-len 2 --quality-tokens 2 --out rep",
            e.display()
        ),
    ] {
        let out = Command::new("sh").arg("-c").arg(format!("ulimit -f 8; exec {cmd}")).current_dir(d).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("error"), "{cmd}: {:?} {err}", out.status);
        assert!(!err.contains("panicked"), "{err}");
    }
    assert_no_temporaries(d);
}

#[test]
fn fault_11_windows_zero_says_so() {
    let t = tempfile::tempdir().unwrap();
    let text = text_file(t.path());
    let e = fails(&["eval", "--model", &tiny(), "--text", &text, "--ctx", "16", "--windows", "0"], t.path());
    assert!(e.contains("--windows") && !e.contains("shorter") && !e.contains("fewer than"), "{e}");
}

#[test]
fn fault_12_cuda_on_a_float_engine_reports_the_real_problem() {
    let t = tempfile::tempdir().unwrap();
    let e = convert_tiny(t.path(), "eng");
    let r = run(&["generate", "--engine-dir", e.to_str().unwrap(), "--backend", "cuda", "--prompt", "hi"], t.path());
    // With --model: no weights are made before the GPU is found (1.1 B parameters would take
    // seconds and 4.4 GB).
    let m = run(
        &[
            "generate",
            "--model",
            "preset:tinyllama-1.1b",
            "--backend",
            "cuda",
            "--prompt-ids",
            "1",
            "--max-new-tokens",
            "1",
        ],
        t.path(),
    );
    if !m.ok() {
        assert_clean_failure(&"cuda preset", &m);
        assert!(!m.stderr.contains("loaded preset:"), "weights made before the GPU check: {}", m.stderr);
    }
    if !r.ok() {
        assert_clean_failure(&"cuda on fp16", &r);
        assert!(!r.stderr.contains("group"), "{}", r.stderr);
        // No GPU here: that is what the message says.
        assert!(r.stderr.contains("GPU") || r.stderr.contains("driver"), "{}", r.stderr);
    }
}

#[test]
fn fault_13_engine_dirs_are_relocatable() {
    let t = tempfile::tempdir().unwrap();
    let (a, b, c) = (t.path().join("a"), t.path().join("b"), t.path().join("c"));
    for p in [&a, &b, &c] {
        std::fs::create_dir(p).unwrap();
    }
    copy_tiny(&a.join("m"));
    // The model path relative to where convert runs.
    let cfg = write_cfg(&a, "c.yaml", &cfg_for("m", "eng", "quantization: {precision: fp16}\n"));
    succeeds(&["convert", "--config", &cfg], &a);
    std::fs::rename(a.join("eng"), b.join("moved")).unwrap();
    let moved = b.join("moved");
    let gen = [
        "generate",
        "--engine-dir",
        moved.to_str().unwrap(),
        "--prompt",
        "Shall I",
        "--greedy",
        "--max-new-tokens",
        "3",
    ];
    let want =
        succeeds(&["generate", "--model", "m", "--prompt", "Shall I", "--greedy", "--max-new-tokens", "3"], &a).stdout;
    assert_eq!(succeeds(&gen, &c).stdout, want, "same tokens from another directory after the move");
    // A changed source model is named, never silently used.
    fill_safetensor(&a.join("m/model.safetensors"), "model.norm.weight", 0.5);
    let e = fails(&gen, &c);
    assert!(e.contains("changed"), "{e}");
    // A missing one too.
    std::fs::remove_dir_all(a.join("m")).unwrap();
    let e = fails(&gen, &c);
    assert!(e.contains("source model"), "{e}");
}

#[test]
fn fault_14_messages_name_the_flag() {
    let t = tempfile::tempdir().unwrap();
    let text = text_file(t.path());
    let e = fails(&["eval", "--model", &tiny(), "--text", &text, "--ctx", "0"], t.path());
    assert!(e.contains("--ctx") && !e.contains("max_batch"), "{e}");
    let e = fails(&["generate", "--model", &tiny(), "--prompt", "hi", "--temperature", "-1"], t.path());
    assert!(e.contains("--temperature") && !e.contains("unexpected argument"), "{e}");
}

#[test]
fn fault_15_convert_checks_build_settings_before_work() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let cases = [
        ("build:\n  max_batch_size: 1\n  max_input_len: 16\n  max_seq_len: 32\n  opt_batch_size: 1\n  target: [sm999]\n", "sm999"),
        ("tensorrt: {optimization_level: 9}\n", "optimization_level"),
        ("build:\n  max_batch_size: 1000000000000\n  max_input_len: 16\n  max_seq_len: 32\n  opt_batch_size: 1\n", "max_batch_size"),
        ("build:\n  max_batch_size: 1\n  max_input_len: 16\n  max_seq_len: 100000000000\n  opt_batch_size: 1\n", "max_seq_len"),
        ("tensorrt: {workspace_mb: 18446744073709551615}\n", "workspace_mb"),
    ];
    for (extra, want) in cases {
        // The model does not exist: the config error must come first.
        let body = format!("name: e\noutput_dir: out\nmodel: {{path: missing.gguf}}\n{extra}");
        let c = write_cfg(d, "c.yaml", &body);
        let e = fails(&["convert", "--config", &c], d);
        assert!(e.contains(want) && e.contains("c.yaml"), "{want}: {e}");
        assert!(!e.contains("missing.gguf"), "checked late: {e}");
        assert!(!d.join("out").exists());
    }
}

#[test]
fn fault_16_report_states_the_context_used_and_labels_baselines() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let e = convert_tiny(d, "eng");
    let text = text_file(d);
    let bench = |out: &str, extra: &[&str]| {
        let mut a = bench_args(
            e.to_str().unwrap(),
            &["--eval-text", &text, "--eval-ctx", "100000", "--eval-windows", "1", "--out", out],
        );
        a.extend(extra);
        succeeds(&a, d);
        std::fs::read_to_string(d.join(out).join("report.md")).unwrap()
    };
    let md = bench("r1", &[]);
    assert!(!md.contains("ctx 100000,") && md.contains("ctx 32"), "{md}");
    let md = bench("r2", &["--baseline", "r1/results.json"]);
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| e")).collect();
    assert!(rows.iter().any(|l| l.starts_with("| e (baseline) |")), "{md}");
    assert!(rows.iter().any(|l| l.starts_with("| e |")), "{md}");
}

#[test]
fn fault_17_nan_weights_are_an_error_not_a_perplexity() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    copy_tiny(&d.join("nan"));
    fill_safetensor(&d.join("nan/model.safetensors"), "model.layers.0.input_layernorm.weight", f32::NAN);
    let text = text_file(d);
    let r = run(&["eval", "--model", "nan", "--text", &text, "--ctx", "16", "--json"], d);
    assert_clean_failure(&"NaN eval", &r);
    assert!(!r.stdout.to_lowercase().contains("nan"), "{}", r.stdout);
    assert!(r.stderr.contains("non-finite"), "{}", r.stderr);
    let r = run(&["eval", "--model", "nan", "--text", &text, "--ctx", "16"], d);
    assert_clean_failure(&"NaN eval", &r);
}

#[test]
fn fault_18_info_is_cheap_and_os_errors_print_once() {
    let t = tempfile::tempdir().unwrap();
    // 1.1 B parameters: 4.4 GB if materialized. Under a 1 GB address-space limit it must still work.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v 1500000; exec '{BIN}' info --model preset:tinyllama-1.1b --json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["config"]["hidden_size"], 2048);
    let e = fails(&["info", "--model", "missing.gguf"], t.path());
    assert_eq!(e.matches("No such file or directory").count(), 1, "{e}");
    assert_eq!(e.matches("missing.gguf").count(), 1, "{e}");
}

// ---------------------------------------------------------------------------------------------
// The bad-input corpus

#[test]
fn corpus_gguf_truncated_and_corrupted() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let good = tiny_gguf();
    std::fs::write(d.join("good.gguf"), &good).unwrap();
    let r = succeeds(&["info", "--model", "good.gguf", "--json"], d);
    assert!(r.stdout.contains("\"hidden_size\": 64"), "{}", r.stdout);
    succeeds(&["generate", "--model", "good.gguf", "--prompt-ids", "1,2", "--greedy", "--max-new-tokens", "2"], d);
    let mut rng = Rng(14);
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    // Truncations: every byte of the first 64, then spread over the rest.
    for n in (0..64).chain((0..24).map(|_| 64 + rng.below(good.len() - 64))) {
        cases.push((format!("truncated at {n}"), good[..n].to_vec()));
    }
    // Bit flips and absurd values in the header (counts, lengths, types, offsets).
    let header_end = 4096.min(good.len());
    for _ in 0..40 {
        let mut b = good.clone();
        let i = rng.below(header_end);
        b[i] ^= 1 << rng.below(8);
        cases.push((format!("bit flip at {i}"), b));
    }
    for i in [8, 16] {
        let mut b = good.clone();
        b[i..i + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        cases.push((format!("count u64::MAX at {i}"), b));
    }
    let mut b = good.clone();
    b[24..32].copy_from_slice(&u64::MAX.to_le_bytes()); // first key's length
    cases.push(("key length u64::MAX".into(), b));
    for (what, bytes) in &cases {
        std::fs::write(d.join("bad.gguf"), bytes).unwrap();
        // info reads the header; generate also reads and uses every tensor.
        for args in [
            &["info", "--model", "bad.gguf"][..],
            &["generate", "--model", "bad.gguf", "--prompt-ids", "1", "--greedy", "--max-new-tokens", "1"][..],
        ] {
            let r = run(args, d);
            if !r.ok() {
                assert_clean_failure(&format!("{what}: {args:?}"), &r);
            }
        }
    }
}

#[test]
fn corpus_broken_hf_directories() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    type Break = Box<dyn Fn(&Path)>;
    type Edit = Box<dyn Fn(&mut Vec<u8>)>;
    let st = |f: Edit| -> Break {
        Box::new(move |m: &Path| {
            let p = m.join("model.safetensors");
            let mut b = std::fs::read(&p).unwrap();
            f(&mut b);
            std::fs::write(&p, b).unwrap();
        })
    };
    let cfg = |f: Box<dyn Fn(&mut serde_json::Value)>| -> Break {
        Box::new(move |m: &Path| {
            let p = m.join("config.json");
            let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            f(&mut v);
            std::fs::write(&p, v.to_string()).unwrap();
        })
    };
    let cases: Vec<(&str, Break)> = vec![
        ("no config.json", Box::new(|m: &Path| std::fs::remove_file(m.join("config.json")).unwrap())),
        ("no weights", Box::new(|m: &Path| std::fs::remove_file(m.join("model.safetensors")).unwrap())),
        ("config not JSON", Box::new(|m: &Path| std::fs::write(m.join("config.json"), "{hidden_size: ").unwrap())),
        ("config empty", Box::new(|m: &Path| std::fs::write(m.join("config.json"), "").unwrap())),
        ("hidden_size 0", cfg(Box::new(|v| v["hidden_size"] = 0.into()))),
        ("heads 0", cfg(Box::new(|v| v["num_attention_heads"] = 0.into()))),
        ("heads not dividing", cfg(Box::new(|v| v["num_attention_heads"] = 7.into()))),
        ("layers huge", cfg(Box::new(|v| v["num_hidden_layers"] = 1_000_000_000u64.into()))),
        ("vocab huge", cfg(Box::new(|v| v["vocab_size"] = u64::MAX.into()))),
        ("hidden a string", cfg(Box::new(|v| v["hidden_size"] = "64".into()))),
        ("rope_theta negative", cfg(Box::new(|v| v["rope_theta"] = (-1.0).into()))),
        ("eps a string", cfg(Box::new(|v| v["rms_norm_eps"] = "small".into()))),
        ("max positions 0", cfg(Box::new(|v| v["max_position_embeddings"] = 0.into()))),
        ("empty weights file", st(Box::new(|b| b.clear()))),
        ("weights truncated to 7", st(Box::new(|b| b.truncate(7)))),
        (
            "weights header only",
            st(Box::new(|b| {
                let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
                b.truncate(8 + n)
            })),
        ),
        (
            "weights truncated by one",
            st(Box::new(|b| {
                b.pop();
            })),
        ),
        ("header length u64::MAX", st(Box::new(|b| b[..8].copy_from_slice(&u64::MAX.to_le_bytes())))),
        (
            "header length past end",
            st(Box::new(|b| {
                let n = b.len() as u64;
                b[..8].copy_from_slice(&n.to_le_bytes())
            })),
        ),
        ("header JSON garbage", st(Box::new(|b| b[8] = b'!'))),
        (
            "shape changed",
            st(Box::new(|b| {
                let (n, mut h) = safetensors_header(b);
                let name = h.as_object().unwrap().keys().find(|k| k.contains("q_proj")).unwrap().clone();
                h[&name]["shape"][0] = 3.into();
                let mut j = h.to_string().into_bytes();
                j.resize(n, b' ');
                if j.len() == n {
                    b[8..8 + n].copy_from_slice(&j);
                }
            })),
        ),
        (
            "index to a missing shard",
            Box::new(|m: &Path| {
                std::fs::rename(m.join("model.safetensors"), m.join("shard-1.safetensors")).unwrap();
                std::fs::write(
                    m.join("model.safetensors.index.json"),
                    r#"{"weight_map": {"model.norm.weight": "nope.safetensors"}}"#,
                )
                .unwrap();
            }),
        ),
        (
            "index escaping the dir",
            Box::new(|m: &Path| {
                std::fs::rename(m.join("model.safetensors"), m.join("shard-1.safetensors")).unwrap();
                std::fs::write(
                    m.join("model.safetensors.index.json"),
                    r#"{"weight_map": {"model.norm.weight": "../shard-1.safetensors"}}"#,
                )
                .unwrap();
            }),
        ),
        ("tokenizer garbage", Box::new(|m: &Path| std::fs::write(m.join("tokenizer.json"), "[1,2").unwrap())),
    ];
    for (what, f) in &cases {
        let m = d.join("m");
        let _ = std::fs::remove_dir_all(&m);
        copy_tiny(&m);
        f(&m);
        for args in [
            &["info", "--model", "m"][..],
            &["generate", "--model", "m", "--prompt-ids", "1", "--greedy", "--max-new-tokens", "1"][..],
        ] {
            let r = run(args, d);
            assert_clean_failure(&format!("{what}: {args:?}"), &r);
        }
    }
}

#[test]
fn corpus_bad_yaml_configs() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let m = tiny();
    let b = "build: {max_batch_size: 1, max_input_len: 16, max_seq_len: 32, opt_batch_size: 1}\n";
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "c.yaml"),
        ("\0\u{1}binary".into(), "c.yaml"),
        ("name: [".into(), "c.yaml"),
        ("- a\n- b\n".into(), "c.yaml"),
        (format!("model: {{path: {m}}}\n{b}"), "name"),
        ("name: e\n".into(), "model"),
        (format!("name: ''\nmodel: {{path: {m}}}\n{b}"), "name"),
        (format!("name: ../up\nmodel: {{path: {m}}}\n{b}"), "name"),
        (format!("name: .hidden\nmodel: {{path: {m}}}\n{b}"), "name"),
        (format!("name: e\nname: f\nmodel: {{path: {m}}}\n{b}"), "name"),
        (format!("name: e\nmodel: {{path: {m}, seed: -1}}\n{b}"), "seed"),
        (format!("name: e\noutput_dir: ''\nmodel: {{path: {m}}}\n{b}"), "output_dir"),
        (format!("name: e\noutput_dir: .\nmodel: {{path: {m}}}\n{b}"), "output_dir"),
        (format!("name: e\noutput_dir: ..\nmodel: {{path: {m}}}\n{b}"), "output_dir"),
        (format!("name: e\noutput_dir: /\nmodel: {{path: {m}}}\n{b}"), "output_dir"),
        (format!("name: e\nmodel: {{path: ''}}\n{b}"), "model.path"),
        (format!("name: e\nmodel: {{path: {m}}}\nbuild: {{max_batch_size: 0, max_input_len: 16, max_seq_len: 32, opt_batch_size: 1}}\n"), "max_batch_size"),
        (format!("name: e\nmodel: {{path: {m}}}\nbuild: {{max_batch_size: -1, max_input_len: 16, max_seq_len: 32, opt_batch_size: 1}}\n"), "max_batch_size"),
        (format!("name: e\nmodel: {{path: {m}}}\nbuild: {{max_batch_size: 1, max_input_len: 64, max_seq_len: 32, opt_batch_size: 1}}\n"), "max_input_len"),
        (format!("name: e\nmodel: {{path: {m}}}\nbuild: {{max_batch_size: 1, max_input_len: 16, max_seq_len: 32, opt_batch_size: 2}}\n"), "opt_batch_size"),
        (format!("name: e\nmodel: {{path: {m}}}\nbuild: {{max_batch_size: 1.5, max_input_len: 16, max_seq_len: 32, opt_batch_size: 1}}\n"), "max_batch_size"),
        (format!("name: e\nmodel: {{path: {m}}}\n{b}quantization: {{precision: int4_rtn, group_size: 0}}\n"), "group_size"),
        (format!("name: e\nmodel: {{path: {m}}}\n{b}quantization: {{precision: int4_awq}}\n"), "calibration"),
        (format!("name: e\nmodel: {{path: {m}}}\n{b}quantization: {{precision: int8, calibration: {{texts: [], samples: 0}}}}\n"), "calibration"),
        (format!("name: e\nmodel: {{path: {m}}}\n{b}onnx: {{attention: flash}}\n"), "flash"),
        (format!("name: e\nmodel: {{path: {m}}}\n{b}tensorrt: {{log_level: loud}}\n"), "log_level"),
        (format!("name: e\nmodel: {{path: {m}}}\n{b}tensorrt: {{timing_cache: maybe}}\n"), "timing_cache"),
        // A billion-laughs alias bomb must be refused or bounded, never expanded.
        (
            format!("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\nname: e\nmodel: {{path: {m}}}\n"),
            "c.yaml",
        ),
    ];
    for (body, want) in &cases {
        let c = write_cfg(d, "c.yaml", body);
        let r = run(&["convert", "--config", &c], d);
        assert_clean_failure(&body, &r);
        assert!(r.stderr.contains(want), "{body:?}: wants {want:?} in {}", r.stderr);
        assert!(r.elapsed < Duration::from_secs(10), "{body:?} took {:?}", r.elapsed);
        assert_eq!(names_in(d), vec!["c.yaml"], "{body:?}");
    }
}

#[test]
fn corpus_absurd_flag_values() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let text = text_file(d);
    let m = tiny();
    let e = convert_tiny(d, "eng");
    let e = e.to_str().unwrap();
    let max = "18446744073709551615";
    let gen = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = ["generate", "--model", &m, "--prompt", "Shall I", "--max-new-tokens", "2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let bench = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> =
            ["bench", "--engine-dirs", e, "--backends", "cpu", "--out", "r"].iter().map(|s| s.to_string()).collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let ev = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = ["eval", "--model", &m, "--text", &text].iter().map(|s| s.to_string()).collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (gen(&["--temperature", "-1"]), "--temperature"),
        (gen(&["--temperature", "nan"]), "--temperature"),
        (gen(&["--temperature", "inf"]), "--temperature"),
        (gen(&["--top-p", "1.5"]), "--top-p"),
        (gen(&["--top-p", "-0.1"]), "--top-p"),
        (gen(&["--top-p", "0"]), "--top-p"),
        (gen(&["--repetition-penalty", "0"]), "--repetition-penalty"),
        (gen(&["--repetition-penalty", "nan"]), "--repetition-penalty"),
        (gen(&["--max-new-tokens", max]), "--max-new-tokens"),
        (gen(&["--max-new-tokens", "-1"]), "--max-new-tokens"),
        (gen(&["--top-k", max]), "--top-k"),
        (vec!["generate".into(), "--model".into(), m.clone(), "--prompt-ids".into(), "99999".into()], "vocabulary"),
        (vec!["generate".into(), "--model".into(), m.clone(), "--prompt-ids".into(), "1,,2".into()], "--prompt-ids"),
        (ev(&["--ctx", "0"]), "--ctx"),
        (ev(&["--ctx", "1"]), "--ctx"),
        (ev(&["--ctx", max]), "--ctx"),
        (ev(&["--windows", "0"]), "--windows"),
        (bench(&["--runs", "0"]), "--runs"),
        (bench(&["--runs", max]), "--runs"),
        (bench(&["--warmup", max]), "--warmup"),
        (bench(&["--output-len", "0"]), "--output-len"),
        (bench(&["--output-len", max]), "--output-len"),
        (bench(&["--batch-sizes", "0"]), "--batch-sizes"),
        (bench(&["--batch-sizes", max]), "--batch-sizes"),
        (bench(&["--input-lens", "0"]), "--input-lens"),
        (bench(&["--eval-ctx", "1"]), "--eval-ctx"),
        (bench(&["--eval-windows", "0"]), "--eval-windows"),
        (bench(&["--quality-tokens", max]), "--quality-tokens"),
        (bench(&["--memory-sweep", "--sweep-seq-lens", "0"]), "--sweep-seq-lens"),
        (bench(&["--memory-sweep", "--sweep-batch-sizes", "0"]), "--sweep-batch-sizes"),
        (vec!["info".into(), "--threads".into(), "100000".into(), "--model".into(), "preset:tiny".into()], "--threads"),
        (vec!["build".into(), "--engine-dir".into(), e.into(), "--opt-level".into(), "9".into()], "--opt-level"),
        (vec!["build".into(), "--engine-dir".into(), e.into(), "--trt-log".into(), "loud".into()], "--trt-log"),
        (
            vec![
                "agree".into(),
                "--engine-dir".into(),
                e.into(),
                "--reference-dir".into(),
                e.into(),
                "--prompt".into(),
                "hi".into(),
                "--max-new-tokens".into(),
                max.into(),
            ],
            "--max-new-tokens",
        ),
    ];
    for (args, want) in &cases {
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let r = run(&a, d);
        assert_clean_failure(&a, &r);
        assert!(r.stderr.contains(want), "{a:?}: wants {want:?} in {}", r.stderr);
        assert!(r.elapsed < Duration::from_secs(20), "{a:?} took {:?}", r.elapsed);
    }
    assert!(!d.join("r").exists(), "bench wrote a report for bad flags");
}

#[test]
fn corpus_damaged_engine_dirs() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let good = convert_tiny(d, "good");
    type Damage = Box<dyn Fn(&Path)>;
    let man = |f: Box<dyn Fn(&mut serde_json::Value)>| -> Damage {
        Box::new(move |e: &Path| {
            let p = e.join("trtforge.json");
            let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            f(&mut v);
            std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
        })
    };
    let cases: Vec<(&str, Damage)> = vec![
        ("manifest missing", Box::new(|e: &Path| std::fs::remove_file(e.join("trtforge.json")).unwrap())),
        ("manifest empty", Box::new(|e: &Path| std::fs::write(e.join("trtforge.json"), "").unwrap())),
        (
            "manifest not JSON",
            Box::new(|e: &Path| std::fs::write(e.join("trtforge.json"), "{\"schema_version\": 1,").unwrap()),
        ),
        (
            "manifest a directory",
            Box::new(|e: &Path| {
                std::fs::remove_file(e.join("trtforge.json")).unwrap();
                std::fs::create_dir(e.join("trtforge.json")).unwrap();
            }),
        ),
        ("schema 99", man(Box::new(|v| v["schema_version"] = 99.into()))),
        ("file outside", man(Box::new(|v| v["files"][0]["name"] = "../../etc/passwd".into()))),
        ("onnx absolute", man(Box::new(|v| v["onnx"]["file"] = "/etc/passwd".into()))),
        ("tokenizer outside", man(Box::new(|v| v["tokenizer"] = "../good.yaml".into()))),
        ("layers 10^9", man(Box::new(|v| v["model_config"]["num_hidden_layers"] = 1_000_000_000u64.into()))),
        ("hidden 0", man(Box::new(|v| v["model_config"]["hidden_size"] = 0.into()))),
        ("max_seq_len 0", man(Box::new(|v| v["build"]["max_seq_len"] = 0.into()))),
        ("max_batch 10^12", man(Box::new(|v| v["build"]["max_batch_size"] = 1_000_000_000_000u64.into()))),
        ("precision unknown", man(Box::new(|v| v["precision"] = "int3".into()))),
        (
            "onnx truncated",
            Box::new(|e: &Path| {
                let p = e.join("model.onnx");
                let b = std::fs::read(&p).unwrap();
                std::fs::write(&p, &b[..b.len() / 2]).unwrap();
            }),
        ),
        ("onnx removed", Box::new(|e: &Path| std::fs::remove_file(e.join("model.onnx")).unwrap())),
        ("tokenizer garbage", Box::new(|e: &Path| std::fs::write(e.join("tokenizer.json"), "{").unwrap())),
    ];
    for (what, f) in &cases {
        let e = d.join("e");
        let _ = std::fs::remove_dir_all(&e);
        std::fs::create_dir(&e).unwrap();
        for f in std::fs::read_dir(&good).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), e.join(f.file_name())).unwrap();
        }
        f(&e);
        for args in [
            &["generate", "--engine-dir", "e", "--prompt", "Shall", "--max-new-tokens", "1"][..],
            &["generate", "--engine-dir", "e", "--backend", "ort", "--prompt", "Shall", "--max-new-tokens", "1"][..],
            &[
                "bench",
                "--engine-dirs",
                "e",
                "--backends",
                "cpu",
                "--runs",
                "1",
                "--warmup",
                "0",
                "--input-lens",
                "4",
                "--output-len",
                "1",
                "--out",
                "r",
            ][..],
            &["build", "--engine-dir", "e"][..],
        ] {
            let r = run_env(args, d, &[("TRTFORGE_TENSORRT_LIB", "/nonexistent/tensorrt")], RUN_LIMIT);
            // bench reports a broken engine in its tables; the others fail cleanly.
            if !(r.ok() && args[0] == "bench") {
                assert_clean_failure(&format!("{what}: {args:?}"), &r);
            }
        }
    }
}

#[test]
fn nan_weights_never_generate_tokens() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    copy_tiny(&d.join("nan"));
    fill_safetensor(&d.join("nan/model.safetensors"), "model.norm.weight", f32::NAN);
    for extra in [&["--greedy"][..], &["--temperature", "0.8"][..]] {
        let mut args = vec!["generate", "--model", "nan", "--prompt", "Shall I", "--max-new-tokens", "4"];
        args.extend(extra);
        let e = fails(&args, d);
        assert!(e.contains("NaN"), "{e}");
    }
}

#[test]
fn preset_engine_dirs_keep_their_seed() {
    // Found while fixing fault 13: the manifest recorded `preset:tiny` without the config's seed,
    // so the cpu backend of a seeded preset engine ran seed-0 weights.
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let c = write_cfg(
        d,
        "c.yaml",
        &cfg_for("\"preset:tiny\"", "eng", "")
            .replace("  path: \"preset:tiny\"\n", "  path: \"preset:tiny\"\n  seed: 7\n"),
    );
    succeeds(&["convert", "--config", &c], d);
    let gen = |args: &[&str]| {
        let mut a = vec!["generate", "--prompt-ids", "5,6,7", "--greedy", "--max-new-tokens", "8"];
        a.extend(args);
        succeeds(&a, d).stdout
    };
    let engine = gen(&["--engine-dir", "eng"]);
    assert_eq!(engine, gen(&["--model", "preset:tiny:7"]));
    assert_ne!(engine, gen(&["--model", "preset:tiny:0"]), "seeds 0 and 7 give the same tokens; pick another prompt");
}

#[test]
fn baseline_of_another_schema_is_refused_before_measuring() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let e = convert_tiny(d, "eng");
    std::fs::write(d.join("old.json"), r#"{"schema_version": 0}"#).unwrap();
    let r = run(
        &["bench", "--engine-dirs", e.to_str().unwrap(), "--backends", "cpu", "--baseline", "old.json", "--out", "r"],
        d,
    );
    assert_clean_failure(&"old baseline", &r);
    assert!(!d.join("r").exists());
}

// ---------------------------------------------------------------------------------------------
// QA sweep A: one test per fault found (`sweep_NN_...`, numbered as the sweep's list)

/// What a `kill -9` between the two renames of `convert --force`'s fallback (filesystems without
/// RENAME_EXCHANGE) leaves: the user's engine dir moved aside under a dead PID, nothing at its name.
/// The next run puts it back before anything else (the renames themselves: util::atomic's tests).
#[test]
fn sweep_01_engine_dir_moved_aside_by_a_killed_convert_is_restored() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let e = convert_tiny(d, "eng");
    let aside = d.join(".eng.trtforge-tmp-2147483632-old");
    std::fs::rename(&e, &aside).unwrap();
    // A reader finds it again.
    succeeds(&["generate", "--engine-dir", "eng", "--prompt", "Shall", "--max-new-tokens", "2"], d);
    assert!(e.join("trtforge.json").exists() && !aside.exists());
    // convert without --force sees the restored dir instead of writing a new one over it.
    std::fs::rename(&e, &aside).unwrap();
    let c = write_cfg(d, "eng.yaml", &cfg_for(&tiny(), "eng", "quantization: {precision: fp16}\n"));
    let err = fails(&["convert", "--config", &c], d);
    assert!(err.contains("already exists"), "{err}");
    assert!(e.join("trtforge.json").exists() && !aside.exists());
    // After the new one was renamed in (killed before removing the old one): the old one goes.
    std::fs::create_dir(&aside).unwrap();
    std::fs::write(aside.join("model.onnx"), b"old").unwrap();
    age(&aside);
    succeeds(&["convert", "--config", &c, "--force"], d);
    assert_eq!(names_in(d), vec!["eng", "eng.yaml"]);
    assert_no_temporaries(d);
}

/// Non-UTF-8 paths, and a binary at a non-UTF-8 path (argv[0] and the bench child processes'
/// executable), work: std::env::args panicked on them (exit 101) before clap saw anything.
#[test]
fn sweep_02_non_utf8_arguments_and_binary_path() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let e = convert_tiny(d, "eng");
    let odd = OsStr::from_bytes(b"eng-\xff\xfe");
    std::fs::rename(&e, d.join(odd)).unwrap();
    let bin_dir = d.join(OsStr::from_bytes(b"bin-\xff"));
    std::fs::create_dir(&bin_dir).unwrap();
    let bin = bin_dir.join("trtforge");
    if std::fs::hard_link(BIN, &bin).is_err() {
        std::fs::copy(BIN, &bin).unwrap();
    }
    let os = |v: &[&str]| -> Vec<std::ffi::OsString> { v.iter().map(|a| a.into()).collect() };
    let mut cases: Vec<Vec<std::ffi::OsString>> = Vec::new();
    let mut info = os(&["info", "--engine-dir"]);
    info.push(odd.into());
    cases.push(info);
    let mut gen = os(&["generate", "--prompt", "Shall", "--max-new-tokens", "2", "--engine-dir"]);
    gen.push(odd.into());
    cases.push(gen);
    let mut bench = os(&["bench"]);
    bench.extend(os(BENCH_SMALL));
    bench.extend(os(&["--isolate", "always", "--engine-dirs"]));
    bench.push(odd.into());
    bench.push("--out".into());
    bench.push(OsStr::from_bytes(b"rep-\xff").into());
    cases.push(bench);
    for exe in [Path::new(BIN), bin.as_path()] {
        for args in &cases {
            let r = run_command(Command::new(exe).args(args).current_dir(d), &(exe, args));
            assert!(r.ok(), "{exe:?} {args:?}: {:?} {}", r.code, r.stderr);
        }
        std::fs::remove_dir_all(d.join(OsStr::from_bytes(b"rep-\xff"))).unwrap();
    }
    assert!(d.join(OsStr::from_bytes(b"eng-\xff\xfe")).join("trtforge.json").exists());
    // A String argument that is not UTF-8 is clap's clean usage error.
    let mut bad = os(&["info", "--model"]);
    bad.push(OsStr::from_bytes(b"m-\xff").into());
    let r = run_command(Command::new(BIN).args(&bad).current_dir(d), &bad);
    assert_clean_failure(&bad, &r);
}

/// Runs with stdout (`out`) or stderr (`!out`) on /dev/full, which fails every write with ENOSPC.
fn run_full(args: &[&str], cwd: &Path, out: bool) -> Run {
    let full = || Stdio::from(std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap());
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(cwd).stdin(Stdio::null());
    let t = Instant::now();
    let child = if out {
        cmd.stdout(full()).stderr(Stdio::piped()).spawn().unwrap()
    } else {
        cmd.stdout(Stdio::piped()).stderr(full()).spawn().unwrap()
    };
    finish(child, &args, t, RUN_LIMIT)
}

/// A stdout that cannot be written (`> /dev/full`) is a clean error, rc 1, not a panic (exit 101);
/// a stderr that cannot be written (`2> /dev/full`) never changes the outcome.
#[test]
fn sweep_03_unwritable_stdout_and_stderr() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let e = convert_tiny(d, "eng");
    let e = e.to_str().unwrap();
    let text = text_file(d);
    let tiny = tiny();
    let bench = bench_args(e, &["--out", "rep"]);
    let eval = ["eval", "--model", &tiny, "--text", &text, "--ctx", "16", "--windows", "1"];
    let generate = ["generate", "--model", &tiny, "--prompt", "Shall I", "--max-new-tokens", "3"];
    let info = ["info", "--engine-dir", e];
    let stdout_cmds: Vec<&[&str]> =
        vec![&info, &["info", "--model", "preset:tiny", "--json"], &eval, &generate, &bench, &["--help"]];
    for args in stdout_cmds {
        let r = run_full(args, d, true);
        assert_eq!(r.code, Some(1), "{args:?}: {:?} {}", r.signal, r.stderr);
        assert!(r.stderr.contains("error: writing to standard output"), "{args:?}: {}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{args:?}: {}", r.stderr);
    }
    // stderr unwritable: the same exit codes as with a working one.
    let c = write_cfg(d, "eng.yaml", &cfg_for(&tiny, "eng", "quantization: {precision: fp16}\n"));
    for (args, code) in [
        (&["convert", "--config", &c, "--force"][..], 0),
        (&bench[..], 0),
        (&generate[..], 0),
        (&["info", "--model", "no-such-model"][..], 1),
        (&["info", "--bogus-flag"][..], 2),
    ] {
        let r = run_full(args, d, false);
        assert_eq!(r.code, Some(code), "{args:?}: {:?}", r.signal);
    }
    assert_no_temporaries(d);
}

/// The options of a small cpu-only `bench` of the tiny engine (no engine dir).
const BENCH_SMALL: &[&str] = &[
    "--backends",
    "cpu",
    "--runs",
    "1",
    "--warmup",
    "0",
    "--input-lens",
    "4",
    "--output-len",
    "2",
    "--quality-tokens",
    "2",
];

/// `bench` on the tiny engine `e`, cpu only, small: its arguments.
fn bench_args<'a>(e: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["bench", "--engine-dirs", e];
    v.extend_from_slice(BENCH_SMALL);
    v.extend_from_slice(extra);
    v
}

/// Every file in `dir`, name → contents.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    names_in(dir).into_iter().map(|n| (n.clone(), std::fs::read(dir.join(&n)).unwrap())).collect()
}

/// The default report directory is made by this run alone (a taken name gets `-2`, `-3`...), and
/// a directory another bench is writing into is refused, not shared.
#[test]
fn sweep_04_report_dirs_are_never_shared() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let e = convert_tiny(d, "eng");
    let e = e.to_str().unwrap();
    // Every name this run could pick for the next few seconds is already another run's (here: a
    // folder holding a user's file), as when two runs start in the same second.
    let now = std::time::SystemTime::now();
    for s in 0..30 {
        let ts = humantime::format_rfc3339_seconds(now + Duration::from_secs(s)).to_string().replace(':', "-");
        std::fs::create_dir_all(d.join("reports").join(&ts)).unwrap();
        std::fs::write(d.join("reports").join(&ts).join("mine.txt"), b"other run").unwrap();
    }
    let r = succeeds(&bench_args(e, &[]), d);
    let md = PathBuf::from(r.stdout.trim());
    assert!(md.ends_with("report.md") && d.join(&md).is_file(), "{}", r.stdout);
    let made = md.parent().unwrap().file_name().unwrap().to_str().unwrap().to_string();
    assert!(made.ends_with("-2"), "{made}");
    for dir in names_in(&d.join("reports")).iter().filter(|n| **n != made) {
        assert_eq!(names_in(&d.join("reports").join(dir)), vec!["mine.txt"], "{dir}");
    }
    // An --out another bench holds (its lock, taken here) is refused before any work, and left alone.
    let out = d.join("locked");
    std::fs::create_dir(&out).unwrap();
    let held = std::fs::File::open(&out).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0);
    let err = fails(&bench_args(e, &["--out", "locked"]), d);
    assert!(err.contains("another trtforge bench"), "{err}");
    let err = fails(&["bench", "serve", "--url", "http://127.0.0.1:9", "--out", "locked"], d);
    assert!(err.contains("another trtforge bench"), "{err}");
    assert!(names_in(&out).is_empty());
    drop(held);
    succeeds(&bench_args(e, &["--out", "locked"]), d);
    assert!(out.join("results.json").is_file());
    assert_no_temporaries(d);
}

/// Every file of a report carries the run's id; a report mixed from two runs (what an interrupted
/// write of an older trtforge left) is recognised and replaced whole; a file of a report's name that
/// carries no id is a user's, never overwritten.
#[test]
fn sweep_05_reports_are_replaced_whole() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let e = convert_tiny(d, "eng");
    let e = e.to_str().unwrap();
    succeeds(&bench_args(e, &["--out", "a"]), d);
    succeeds(&bench_args(e, &["--out", "b"]), d);
    let id = |dir: &str| -> String {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join(dir).join("results.json")).unwrap()).unwrap();
        v["run_id"].as_str().unwrap().to_string()
    };
    let (a, b) = (id("a"), id("b"));
    assert_ne!(a, b);
    for f in names_in(&d.join("a")) {
        let text = std::fs::read_to_string(d.join("a").join(&f)).unwrap();
        assert!(text.contains(&a) && !text.contains(&b), "{f} does not carry its run's id");
    }
    // Mixed: a's report.md beside b's other files.
    std::fs::copy(d.join("a/report.md"), d.join("b/report.md")).unwrap();
    let r = succeeds(&bench_args(e, &["--out", "b"]), d);
    assert!(r.stderr.contains("mixed"), "{}", r.stderr);
    let c = id("b");
    for f in names_in(&d.join("b")) {
        let text = std::fs::read_to_string(d.join("b").join(&f)).unwrap();
        assert!(text.contains(&c), "{f} is not of the last run");
    }
    // A user's report.md beside a report: refused, untouched.
    std::fs::write(d.join("b/report.md"), b"my notes").unwrap();
    let err = fails(&bench_args(e, &["--out", "b"]), d);
    assert!(err.contains("report.md"), "{err}");
    assert_eq!(std::fs::read(d.join("b/report.md")).unwrap(), b"my notes");
    assert_no_temporaries(d);
}

/// A user's file named `.write-test` in --out is not the writability probe's to delete.
#[test]
fn sweep_06_bench_keeps_a_users_write_test_file() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let e = convert_tiny(d, "eng");
    std::fs::create_dir(d.join("r")).unwrap();
    std::fs::write(d.join("r/.write-test"), b"mine").unwrap();
    succeeds(&bench_args(e.to_str().unwrap(), &["--out", "r"]), d);
    assert_eq!(std::fs::read(d.join("r/.write-test")).unwrap(), b"mine");
}

/// A bench that measured no speed cell (no backend could run, every shape over the context) fails
/// with the reasons and leaves an earlier report as it was; a default directory made for it goes.
#[test]
fn sweep_07_bench_that_measured_nothing_fails_and_keeps_the_earlier_report() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let e = convert_tiny(d, "eng");
    let e = e.to_str().unwrap();
    succeeds(&bench_args(e, &["--out", "r"]), d);
    let before = snapshot(&d.join("r"));
    let env = [("TRTFORGE_TENSORRT_LIB", "/nonexistent/tensorrt")];
    let mut trt = bench_args(e, &["--out", "r"]);
    trt[4] = "trt";
    let long = ["bench", "--engine-dirs", e, "--backends", "cpu", "--runs", "1", "--input-lens", "64", "--out", "r"];
    for args in [&trt[..], &long[..]] {
        let err = fails_env(args, d, &env);
        assert!(err.contains("nothing was measured"), "{args:?}: {err}");
        assert_eq!(snapshot(&d.join("r")), before, "{args:?}");
    }
    let err = fails_env(&long[..long.len() - 2], d, &env);
    assert!(err.contains("nothing was measured"), "{err}");
    assert!(names_in(&d.join("reports")).is_empty(), "{:?}", names_in(&d.join("reports")));
    assert_no_temporaries(d);
}

/// Runs under a 4 GiB address-space limit, so that a read without end fails here instead of
/// taking the machine's memory.
fn run_capped(args: &[&str], cwd: &Path) -> Run {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg("ulimit -v 4194304; exec \"$@\"").arg("sh").arg(BIN).args(args).current_dir(cwd);
    run_command(&mut cmd, &args)
}

/// A config, --text or --eval-text that is a device or a FIFO is refused at once (/dev/zero grew
/// memory until the process was killed; a FIFO blocked); a config over 1 MiB is refused.
#[test]
fn sweep_08_special_and_huge_input_files_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let e = convert_tiny(d, "eng");
    let e = e.to_str().unwrap();
    let fifo = d.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let big = d.join("big.yaml");
    std::fs::write(&big, format!("{}# padding\n{}", cfg_for(&tiny(), "x", ""), "#".repeat(2 << 20))).unwrap();
    let tiny = tiny();
    for special in ["/dev/zero", fifo.to_str().unwrap()] {
        for args in [
            vec!["convert", "--config", special],
            vec!["eval", "--model", &tiny, "--text", special, "--ctx", "16"],
            bench_args(e, &["--eval-text", special, "--out", "r"]),
        ] {
            let r = run_capped(&args, d);
            assert_clean_failure(&args, &r);
            assert!(r.stderr.contains(special) && r.stderr.contains("regular file"), "{args:?}: {}", r.stderr);
        }
    }
    let r = run_capped(&["convert", "--config", big.to_str().unwrap()], d);
    assert_clean_failure(&"big config", &r);
    assert!(r.stderr.contains("at most 1048576"), "{}", r.stderr);
    assert!(!d.join("x").exists() && !d.join("r").exists());
}

/// Runs the binary as an unprivileged user when the tests run as root (permissions do not bind
/// root), so that a read-only folder is one here; `dir` (and the folders above it) are made
/// reachable for that user.
fn run_unprivileged(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Run {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(cwd).envs(env.iter().copied());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        cmd.uid(65534).gid(65534);
    }
    run_command(&mut cmd, &args)
}

/// A folder tree the unprivileged user can use: `d` world-writable, reachable from /.
fn shared_dir(t: &tempfile::TempDir) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let d = t.path().join("shared");
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    d
}

/// A folder the unprivileged user can read but not write.
fn read_only_dir(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o555)).unwrap();
}

/// Where the output cannot be written, convert, build and bench serve say so before their work
/// (load / calibration / export, compilation, the load test), not after it.
#[test]
fn sweep_09_unwritable_outputs_are_found_before_the_work() {
    let t = tempfile::tempdir().unwrap();
    let d = shared_dir(&t);
    let e = convert_tiny(&d, "eng");
    std::fs::create_dir(d.join("ro")).unwrap();
    read_only_dir(&d.join("ro"));
    read_only_dir(&e);
    let c = write_cfg(&d, "ro.yaml", &cfg_for(&tiny(), "ro/eng", ""));
    let env = [("TRTFORGE_TENSORRT_LIB", "/nonexistent/tensorrt")];
    for (args, before) in [
        (vec!["convert", "--config", c.as_str()], "loading"),
        (vec!["build", "--engine-dir", "eng"], "/nonexistent"),
        (vec!["bench", "serve", "--url", "http://127.0.0.1:9", "--out", "ro/rep"], "127.0.0.1"),
    ] {
        let r = run_unprivileged(&args, &d, &env);
        assert_clean_failure(&args, &r);
        assert!(r.stderr.contains("ro") || r.stderr.contains("eng"), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("ermission denied"), "{args:?}: {}", r.stderr);
        assert!(!r.stderr.contains(before), "{args:?} started its work first: {}", r.stderr);
    }
    assert!(names_in(&d.join("ro")).is_empty());
}

/// A build killed after installing model.engine and before recording it in trtforge.json leaves
/// an engine dir whose manifest does not list model.engine: it is still trtforge's to replace.
#[test]
fn sweep_10_convert_force_replaces_a_dir_with_an_unrecorded_build_output() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let e = convert_tiny(d, "eng");
    std::fs::write(e.join("model.engine"), b"engine bytes").unwrap();
    let c = write_cfg(d, "eng.yaml", &cfg_for(&tiny(), "eng", "quantization: {precision: fp16}\n"));
    succeeds(&["convert", "--config", &c, "--force"], d);
    assert!(!e.join("model.engine").exists());
    // As a directory it is not a build output: refused.
    std::fs::create_dir(e.join("model.engine")).unwrap();
    let err = fails(&["convert", "--config", &c, "--force"], d);
    assert!(err.contains("model.engine"), "{err}");
}

/// Sets a file's modification time `secs` seconds after the engine dir's manifest's.
fn after_manifest(file: &Path, secs: u64) {
    let man = file.parent().unwrap().join("trtforge.json");
    let t = std::fs::metadata(&man).unwrap().modified().unwrap() + Duration::from_secs(secs);
    std::fs::OpenOptions::new().write(true).open(file).unwrap().set_modified(t).unwrap();
}

/// Contents damaged without a change of size are caught (the SHA-256 of a file newer than the
/// manifest is checked at load), and a manifest that states one fact twice, two ways, is refused.
#[test]
fn sweep_11_damage_that_keeps_sizes_is_caught() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let c = write_cfg(d, "q.yaml", &cfg_for(&tiny(), "q", "quantization: {precision: int8}\n"));
    succeeds(&["convert", "--config", &c], d);
    let gen = ["generate", "--engine-dir", "e", "--prompt-ids", "5,6,7", "--greedy", "--max-new-tokens", "2"];
    let fresh = |d: &Path| {
        let _ = std::fs::remove_dir_all(d.join("e"));
        std::fs::create_dir(d.join("e")).unwrap();
        for f in names_in(&d.join("q")) {
            std::fs::copy(d.join("q").join(&f), d.join("e").join(&f)).unwrap();
        }
        // The copy's times: the manifest written last, as convert writes it.
        let man = d.join("e/trtforge.json");
        let t = std::fs::metadata(&man).unwrap().modified().unwrap() + Duration::from_secs(5);
        std::fs::OpenOptions::new().write(true).open(&man).unwrap().set_modified(t).unwrap();
    };
    fresh(d);
    succeeds(&gen, d);
    // One weight byte in the middle of the ONNX changed; same size, still a valid model.
    let onnx = d.join("e/model.onnx");
    let mut b = std::fs::read(&onnx).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x01;
    std::fs::write(&onnx, &b).unwrap();
    after_manifest(&onnx, 10);
    let err = fails(&gen, d);
    assert!(err.contains("model.onnx") && err.contains("contents changed"), "{err}");
    // The manifest against itself.
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit); 4] = [
        ("vocab_size", |v| v["onnx"]["outputs"][0]["dims"][2] = 1000.into()),
        ("activations", |v| v["onnx"]["dtype"] = "float32".into()),
        ("KV heads", |v| {
            v["onnx"]["inputs"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .filter(|t| t["name"].as_str().unwrap().starts_with("past_key_values."))
                .for_each(|t| t["dims"][1] = 7.into())
        }),
        ("stored as int8", |v| v["precision"] = "fp8".into()),
    ];
    for (what, edit) in edits {
        fresh(d);
        let p = d.join("e/trtforge.json");
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["onnx"]["outputs"][0]["name"], "logits");
        edit(&mut v);
        std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
        let err = fails(&gen, d);
        assert!(err.contains(what), "{what}: {err}");
    }
}

/// A temporary whose PID is not running here is removed only once it is old: its writer may be a
/// live process in another container or host writing into the same shared folder.
#[test]
fn sweep_12_recent_temporaries_of_other_pid_namespaces_are_spared() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    std::fs::create_dir(d.join("out")).unwrap();
    // A live convert elsewhere (its PID means nothing here) writing out/big.
    let live = d.join("out/.big.trtforge-tmp-2147483632");
    std::fs::create_dir(&live).unwrap();
    std::fs::write(live.join("model.onnx"), b"being written").unwrap();
    let c = write_cfg(d, "tiny.yaml", &cfg_for(&tiny(), "out/tiny", ""));
    succeeds(&["convert", "--config", &c], d);
    assert_eq!(std::fs::read(live.join("model.onnx")).unwrap(), b"being written");
    // Untouched for an hour, it is a dead process's: swept.
    age(&live);
    succeeds(&["convert", "--config", &c, "--force"], d);
    assert_eq!(names_in(&d.join("out")), vec!["tiny"]);
}

/// convert --force onto an engine dir whose files cannot be removed (read-only, in a writable
/// folder) is refused before the work, naming it, instead of leaving the old contents behind as an
/// undeletable hidden temporary.
#[test]
fn sweep_13_convert_force_onto_a_read_only_engine_dir_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let d = shared_dir(&t);
    let e = convert_tiny(&d, "eng");
    let before = snapshot(&e);
    read_only_dir(&e);
    let c = write_cfg(&d, "eng.yaml", &cfg_for(&tiny(), "eng", "quantization: {precision: fp16}\n"));
    let r = run_unprivileged(&["convert", "--config", &c, "--force"], &d, &[]);
    assert_clean_failure(&"convert --force", &r);
    assert!(r.stderr.contains("eng") && r.stderr.contains("writable") && !r.stderr.contains("loading"), "{}", r.stderr);
    assert_eq!(snapshot(&e), before);
    assert_eq!(names_in(&d), vec!["eng", "eng.yaml"]);
}
