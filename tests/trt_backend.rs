//! The TensorRT backend's token-level logic (chunk splitting across the prefill and decode
//! profiles, batching, the KV cache of both attention forms) checked without a GPU: the engine's
//! I/O contract is served by ONNX Runtime running the same ONNX, and every call's shapes are
//! checked against the optimization profiles `trtforge build` would declare. Logits must match
//! the CPU reference. (No machine here has a GPU TensorRT-RTX runs on; see
//! docs/benchmarks/trt_h100_refusal.md.)
mod common;
use common::*;
use half::f16;
use ort::session::{Session, SessionInputValue};
use ort::value::Tensor;
use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use trtforge::backend::cpu::CpuBackend;
use trtforge::backend::tensorrt::session::{EngineRunner, HostTensor};
use trtforge::backend::tensorrt::TrtBackend;
use trtforge::backend::{Backend, Logits, SeqChunk};
use trtforge::build::profiles;
use trtforge::engine_dir::config::{AttentionForm, EngineConfig};
use trtforge::engine_dir::manifest::Manifest;
use trtforge::engine_dir::manifest::ProfileInfo;
use trtforge::quant::WeightFormat;

/// fp16 graph vs the f32 reference on the tiny model (as tests/onnx_export.rs).
const F16_TINY_TOL: f32 = 5e-3;

struct OrtRunner {
    session: Session,
    profiles: Vec<ProfileInfo>,
    f16: bool,
    calls: Arc<std::sync::Mutex<Vec<(i32, usize, usize)>>>, // (profile, batch, seq)
}

fn err(e: impl std::fmt::Display) -> trtforge::Error {
    trtforge::Error::Invalid(format!("ONNX Runtime: {e}"))
}

impl EngineRunner for OrtRunner {
    fn run(&mut self, profile: i32, inputs: &[HostTensor]) -> trtforge::Result<Vec<HostTensor>> {
        let p = &self.profiles[profile as usize];
        for t in inputs {
            let r = &p.inputs[&t.name];
            let ok = t.dims.len() == r.min.len()
                && t.dims.iter().zip(&r.min).zip(&r.max).all(|((d, lo), hi)| lo <= d && d <= hi);
            assert!(ok, "{}: shape {:?} outside profile {:?} [{:?}, {:?}]", t.name, t.dims, p.name, r.min, r.max);
        }
        self.calls.lock().unwrap().push((profile, inputs[0].dims[0] as usize, inputs[0].dims[1] as usize));
        let mut feed: Vec<(Cow<'static, str>, SessionInputValue<'static>)> = Vec::new();
        for t in inputs {
            let shape = t.dims.clone();
            let v: SessionInputValue = if t.name.starts_with("past_key_values") {
                if self.f16 {
                    let d: Vec<f16> = t.bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]])).collect();
                    Tensor::from_array((shape, d)).map_err(err)?.into()
                } else {
                    let d: Vec<f32> =
                        t.bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                    Tensor::from_array((shape, d)).map_err(err)?.into()
                }
            } else {
                let d: Vec<i64> = t.bytes.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect();
                Tensor::from_array((shape, d)).map_err(err)?.into()
            };
            feed.push((t.name.clone().into(), v));
        }
        let names: Vec<String> = self.session.outputs().iter().map(|o| o.name().to_string()).collect();
        let outs = self.session.run(feed).map_err(err)?;
        let mut res = Vec::new();
        for n in names {
            let (dims, bytes) = if n == "logits" || !self.f16 {
                let (s, d) = outs[n.as_str()].try_extract_tensor::<f32>().map_err(err)?;
                (s.to_vec(), d.iter().flat_map(|x| x.to_le_bytes()).collect())
            } else {
                let (s, d) = outs[n.as_str()].try_extract_tensor::<f16>().map_err(err)?;
                (s.to_vec(), d.iter().flat_map(|x| x.to_le_bytes()).collect())
            };
            res.push(HostTensor { name: n, dims, bytes });
        }
        Ok(res)
    }
}

fn ort_env() -> Option<&'static ort::environment::Environment> {
    static ENV: std::sync::OnceLock<Option<ort::environment::Environment>> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        let lib = match trtforge::backend::ort::find_ort_library() {
            Ok(l) => l,
            Err(e) => {
                skip(e);
                return None;
            }
        };
        Some(ort::init_from(&lib).unwrap().with_name("trt-backend-test").build().unwrap())
    })
    .as_ref()
}

/// Converts the tiny model (max_seq 64, max_input 32, batch 2) and opens the TRT backend over ORT.
type Calls = Arc<std::sync::Mutex<Vec<(i32, usize, usize)>>>;

fn open(tmp: &Path, form: AttentionForm) -> Option<(TrtBackend, Calls)> {
    let env = ort_env()?;
    let form_s = if form == AttentionForm::Tensorrt { "tensorrt" } else { "portable" };
    let y = format!(
        "name: e\noutput_dir: {}\nmodel: {{path: {}}}\nquantization: {{precision: fp16}}\n\
build: {{max_batch_size: 2, max_input_len: 32, max_seq_len: 64, opt_batch_size: 1, target: [sm89]}}\n\
onnx: {{attention: {form_s}}}\n",
        tmp.join("e").display(),
        fixture("tiny_llama").display()
    );
    std::fs::write(tmp.join("c.yaml"), y).unwrap();
    let cfg = EngineConfig::load(&tmp.join("c.yaml")).unwrap();
    let dir = trtforge::convert::convert(&cfg, false, &mut |_| {}).unwrap();
    let mut man = Manifest::load(&dir).unwrap();
    assert_eq!(man.precision, WeightFormat::F16);
    let names: Vec<String> = man.onnx.inputs.iter().map(|t| t.name.clone()).collect();
    let profs = profiles(&man, &man.build, &names).unwrap();
    // The fields the backend reads; the rest of the section is what `trtforge build` records.
    man.extra.insert(
        "tensorrt".into(),
        serde_json::json!({
            "flavour": "tensorrt-rtx", "version": "1.7.1", "library": "", "targets": ["sm89"], "attention": form,
            "optimization_level": null, "workspace_bytes": null, "profiles": profs, "inputs": [], "outputs": [],
            "layers": 0, "engine_file": "model.engine", "engine_bytes": 0, "engine_sha256": "", "build_seconds": 0.0,
            "timing_cache": "off", "timing_cache_file": null, "build_cache": "off", "build_cache_key": ""
        }),
    );
    let session = Session::builder(env).unwrap().commit_from_file(dir.join("model.onnx")).unwrap();
    let calls = Calls::default();
    let runner = OrtRunner { session, profiles: profs, f16: true, calls: calls.clone() };
    Some((TrtBackend::with_runner(&man, Box::new(runner), 2, 64).unwrap(), calls))
}

fn check_form(form: AttentionForm) {
    let tmp = tempfile::tempdir().unwrap();
    let Some((mut trt, calls)) = open(tmp.path(), form) else { return };
    let m = trtforge::model::load::load(fixture("tiny_llama").to_str().unwrap()).unwrap();
    let mut cpu = CpuBackend::new(Arc::new(m.weights), 2, 64).unwrap();
    // Slot 0: 40 tokens (> max_input_len 32: split into 32 + 8); slot 1: 5 tokens. Batched.
    let p0: Vec<u32> = (0..40).map(|i| (i * 7 + 3) % 384).collect();
    let p1: Vec<u32> = vec![5, 77, 140, 9, 300];
    let chunks = [SeqChunk { slot: 0, tokens: &p0 }, SeqChunk { slot: 1, tokens: &p1 }];
    let a = cpu.forward(&chunks, Logits::All).unwrap();
    let b = trt.forward(&chunks, Logits::All).unwrap();
    assert_eq!(a.rows(), 45);
    let mut worst = max_abs_diff(&a.data, &b.data);
    let mut next = [trtforge::generate::argmax(a.row(39)), trtforge::generate::argmax(a.row(44))];
    // Decode: both slots each step (different past lengths).
    for step in 0..12 {
        let t = [[next[0]], [next[1]]];
        let chunks = [SeqChunk { slot: 0, tokens: &t[0] }, SeqChunk { slot: 1, tokens: &t[1] }];
        let a = cpu.forward(&chunks, Logits::Last).unwrap();
        let b = trt.forward(&chunks, Logits::Last).unwrap();
        worst = worst.max(max_abs_diff(&a.data, &b.data));
        for s in 0..2 {
            assert_eq!(
                trtforge::generate::argmax(a.row(s)),
                trtforge::generate::argmax(b.row(s)),
                "{form:?} step {step} slot {s}"
            );
        }
        next = [trtforge::generate::argmax(a.row(0)), trtforge::generate::argmax(a.row(1))];
    }
    assert_eq!(trt.seq_len(0), 52);
    let calls = calls.lock().unwrap().clone();
    // Prefill: 32 + 5 tokens, then the remaining 8 of slot 0 (prefill profile 0).
    let prefill: Vec<_> = calls.iter().take_while(|c| c.0 == 0).collect();
    assert!(!prefill.is_empty() && prefill.iter().all(|c| c.2 > 1), "prefill calls first: {calls:?}");
    let decode: Vec<_> = calls.iter().filter(|c| c.0 == 1).collect();
    match form {
        // Rows carry their own past length: both slots decode in one enqueue.
        AttentionForm::Tensorrt => assert!(decode.iter().all(|c| c.1 == 2) && decode.len() == 12, "{calls:?}"),
        // Past/present must have one length per batch: slots of different lengths run apart.
        AttentionForm::Portable => assert!(decode.iter().all(|c| c.1 == 1) && decode.len() == 24, "{calls:?}"),
    }
    // A reset slot starts over.
    trt.reset(1);
    cpu.reset(1);
    let c = [SeqChunk { slot: 1, tokens: &p1 }];
    worst = worst
        .max(max_abs_diff(&cpu.forward(&c, Logits::Last).unwrap().data, &trt.forward(&c, Logits::Last).unwrap().data));
    eprintln!("{form:?}: max |Δlogit| vs CPU = {worst}");
    assert!(worst < F16_TINY_TOL, "{form:?}: {worst}");
}

#[test]
fn portable_form_backend_matches_cpu() {
    check_form(AttentionForm::Portable);
}

#[test]
fn tensorrt_form_backend_matches_cpu() {
    check_form(AttentionForm::Tensorrt);
}
