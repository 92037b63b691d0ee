//! CUDA engine against the CPU reference. These need an NVIDIA GPU with the CUDA 13 libraries;
//! without one each GPU test prints why it skipped (TRTFORGE_REQUIRE_GPU=1 turns the skip into a
//! failure). What the engine does on the host — kernel source generation and NVRTC compilation,
//! weight packing, graph lowering, pass scheduling — is unit-tested in src/backend/cuda and runs
//! everywhere; the tests below that need no GPU check that its absence is a clean error.
use std::process::Command;
use trtforge::backend::cuda::{gpu, CudaBackend, CudaOptions};
use trtforge::eval::cuda_check as check;
use trtforge::model::load::load;
use trtforge::quant::WeightFormat;

fn fixture(rel: &str) -> String {
    format!("{}/tests/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"))
}

fn gpu_present(test: &str) -> bool {
    match gpu::probe() {
        Ok(()) => true,
        Err(e) => {
            if std::env::var("TRTFORGE_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("{test}: TRTFORGE_REQUIRE_GPU=1 but {e}");
            }
            eprintln!("SKIP {test}: {e}");
            false
        }
    }
}

fn prompts(lens: &[usize], vocab: u32) -> Vec<Vec<u32>> {
    lens.iter()
        .enumerate()
        .map(|(i, &n)| (0..n as u32).map(|j| 3 + (j * 31 + i as u32 * 7) % (vocab - 3)).collect())
        .collect()
}

#[test]
fn no_gpu_is_a_clear_error_not_a_panic() {
    if gpu::probe().is_ok() {
        eprintln!("SKIP no_gpu_is_a_clear_error_not_a_panic: a GPU is present");
        return;
    }
    let m = load(&fixture("tiny_llama")).unwrap();
    let e = CudaBackend::new(&m.weights, CudaOptions::new(WeightFormat::F16, 1, 32)).err().expect("must fail");
    let msg = e.to_string();
    assert!(msg.starts_with("GPU:"), "{msg}");
    let out = Command::new(env!("CARGO_BIN_EXE_trtforge"))
        .args(["generate", "--model", &fixture("tiny_llama"), "--backend", "cuda", "--prompt-ids", "1,2,3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "exit code; stderr: {}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error: GPU:") && !err.contains("panicked"), "{err}");
}

#[test]
fn bad_precision_flag_is_an_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_trtforge"))
        .args([
            "generate",
            "--model",
            &fixture("tiny_llama"),
            "--backend",
            "cuda",
            "--precision",
            "int3",
            "--prompt-ids",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown precision"));
}

#[test]
fn tiny_logits_match_cpu_in_every_precision() {
    if !gpu_present("tiny_logits_match_cpu_in_every_precision") {
        return;
    }
    let m = load(&fixture("tiny_llama")).unwrap();
    let ps = prompts(&[5, 17, 40], m.weights.config.vocab_size as u32);
    for p in [WeightFormat::F32, WeightFormat::F16, WeightFormat::I8] {
        let r = check::logits_check("tiny_llama", &m.weights, p, &ps).unwrap();
        assert!(r.pass, "{}: {}", r.name, r.detail);
    }
    let t = load("preset:tiny").unwrap();
    let r = check::logits_check("preset:tiny", &t.weights, WeightFormat::I4 { group: 32 }, &ps).unwrap();
    assert!(r.pass, "{}: {}", r.name, r.detail);
}

#[test]
fn tiny_greedy_fp32_matches_cpu_and_gpu_loop() {
    if !gpu_present("tiny_greedy_fp32_matches_cpu_and_gpu_loop") {
        return;
    }
    let m = load(&fixture("tiny_llama")).unwrap();
    let ps = prompts(&[4, 11, 30], m.weights.config.vocab_size as u32);
    let r = check::greedy_check("tiny_llama", &m.weights, WeightFormat::F32, &ps, 40).unwrap();
    assert!(r.pass, "{}: {}", r.name, r.detail);
    let r = check::gpu_loop_check("tiny_llama", &m.weights, WeightFormat::F16, &ps, 20).unwrap();
    assert!(r.pass, "{}: {}", r.name, r.detail);
}
