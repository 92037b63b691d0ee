//! CUDA engine against the CPU reference. The GPU tests are `#[ignore]`d with the reason, so a
//! CPU-only run lists them as not checked; on the GPU machine run them with
//! `cargo test --release --test cuda -- --include-ignored`, where a missing GPU is a failure.
//! What the engine does on the host — kernel source generation and NVRTC compilation, weight packing, graph lowering, pass scheduling — is unit-tested in src/backend/cuda and runs
//! everywhere; the tests below that need no GPU check that its absence is a clean error.
use std::process::Command;
use trtforge::backend::cuda::{gpu, CudaBackend, CudaOptions};
use trtforge::eval::cuda_check as check;
use trtforge::model::load::load;
use trtforge::quant::WeightFormat;
use trtforge::util::seeded_prompts;

fn fixture(rel: &str) -> String {
    format!("{}/tests/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"))
}

/// Fails the (ignored, explicitly requested) GPU test when there is no usable GPU.
fn require_gpu() {
    if let Err(e) = gpu::probe() {
        panic!("this GPU test was requested (--include-ignored) but {e}");
    }
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
    // cuda-check fails at once with the same error (before preparing any model), every check set alike.
    for set in ["", "udown"] {
        let out = Command::new(env!("CARGO_BIN_EXE_trtforge"))
            .args(["cuda-check", "--tiny", &fixture("tiny_llama"), "--tinyllama"])
            .env("TRTFORGE_CHECKS", set)
            .env_remove("TRTFORGE_CUDA_PRECOMPILE")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "cuda-check {set:?} exit code; stderr: {err}");
        assert!(err.contains("error: GPU:") && !err.contains("panicked"), "{err}");
        assert!(String::from_utf8_lossy(&out.stdout).trim().is_empty(), "no check ran");
    }
}

/// `bench` probes for a GPU before it makes any weights, except where TRTFORGE_CUDA_PRECOMPILE asks it to fill the
/// kernel cache on a machine without one: then it reaches NVRTC (kernels cached, or NVRTC missing), not the driver.
#[test]
fn bench_precompiles_kernels_without_a_gpu() {
    if gpu::probe().is_ok() {
        eprintln!("SKIP bench_precompiles_kernels_without_a_gpu: a GPU is present");
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_trtforge"))
        .args(["bench", "--isolate", "never", "--model", &fixture("tiny_llama"), "--precisions", "fp16"])
        .args(["--batch-sizes", "1", "--input-lens", "8", "--output-len", "2"])
        .env("TRTFORGE_CUDA_PRECOMPILE", "sm_90")
        .env("TRTFORGE_CACHE_DIR", cache.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("NVIDIA driver") && !err.contains("panicked"), "{err}");
    assert!(err.contains("kernels for sm_90 cached") || err.contains("libnvrtc.so"), "{err}");
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
    // A usage error (clap's exit code 2) that names the value and the choices.
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("'int3'") && err.contains("fp32, fp16, int8, int4 or fp8"), "{err}");
}

#[test]
#[ignore = "needs an NVIDIA GPU with CUDA 13: run with --include-ignored on the GPU machine"]
fn tiny_logits_match_cpu_in_every_precision() {
    require_gpu();
    let m = load(&fixture("tiny_llama")).unwrap();
    let ps = seeded_prompts(&[5, 17, 40], m.weights.config.vocab_size, 1);
    for p in [WeightFormat::F32, WeightFormat::F16, WeightFormat::I8] {
        let r = check::logits_check("tiny_llama", &m.weights, p, &ps).unwrap();
        assert!(r.pass, "{}: {}", r.name, r.detail);
    }
    // preset:tiny has a smaller vocabulary (256) than the fixture (384): its own prompts.
    let t = load("preset:tiny").unwrap();
    let ps = seeded_prompts(&[5, 17, 40], t.weights.config.vocab_size, 3);
    let r = check::logits_check("preset:tiny", &t.weights, WeightFormat::I4 { group: 32 }, &ps).unwrap();
    assert!(r.pass, "{}: {}", r.name, r.detail);
}

#[test]
#[ignore = "needs an NVIDIA GPU with CUDA 13: run with --include-ignored on the GPU machine"]
fn tiny_greedy_fp32_matches_cpu_and_gpu_loop() {
    require_gpu();
    let m = load(&fixture("tiny_llama")).unwrap();
    let ps = seeded_prompts(&[4, 11, 30], m.weights.config.vocab_size, 2);
    let r = check::greedy_check("tiny_llama", &m.weights, WeightFormat::F32, &ps, 40).unwrap();
    assert!(r.pass, "{}: {}", r.name, r.detail);
    let r = check::gpu_loop_check("tiny_llama", &m.weights, WeightFormat::F16, &ps, 20).unwrap();
    assert!(r.pass, "{}: {}", r.name, r.detail);
}

#[test]
#[ignore = "needs an NVIDIA GPU with CUDA 13: run with --include-ignored on the GPU machine"]
fn tiny_paged_engine_matches_static_engine_chunks_batches_and_cpu() {
    require_gpu();
    // What `serve --backend cuda` runs: paged vs static greedy, chunked vs one-shot prefill,
    // among 63 others vs alone (greedy and sampled), logits vs the CPU reference.
    let m = load(&fixture("tiny_llama")).unwrap();
    let ps = seeded_prompts(&[5, 17, 40], m.weights.config.vocab_size, 1);
    for p in [WeightFormat::F32, WeightFormat::F16] {
        for r in trtforge::eval::cuda_paged_check::paged_checks("tiny_llama", &m.weights, p, &ps, 24) {
            let r = r.unwrap();
            assert!(r.pass, "{}: {}", r.name, r.detail);
        }
    }
}

/// An 8-bit KV cache halves a paged block, so the same `--kv-cache-memory` holds twice the blocks
/// (twice the admitted tokens); its request is checked on the host (scales' shape, dynamic scales,
/// head_dim) before any GPU work.
#[test]
fn eight_bit_kv_doubles_the_paged_blocks_and_is_checked_on_the_host() {
    use trtforge::backend::cpu::KvQuant;
    use trtforge::backend::cuda::kv_scale_table;
    use trtforge::backend::cuda::paged::kv_elem_bytes_of;
    use trtforge::backend::paged::blocks_for_budget;
    use trtforge::quant::kv::{KvCacheDtype, KvScaleMode, KvScales};
    let c = trtforge::model::LlamaConfig::preset("tinyllama-1.1b").unwrap();
    let budget = 8u64 << 30;
    let f16 = blocks_for_budget(&c, kv_elem_bytes_of(WeightFormat::F16, KvCacheDtype::Fp16), budget);
    for kv in [KvCacheDtype::Int8, KvCacheDtype::Fp8] {
        let b8 = blocks_for_budget(&c, kv_elem_bytes_of(WeightFormat::F16, kv), budget);
        assert_eq!((f16, b8), (23_831, 47_662), "{kv:?}"); // 352 KiB vs 176 KiB blocks of 16 tokens
    }
    let ones = |l: usize, h: usize| vec![vec![0.5f32; h]; l];
    let (l, h) = (c.num_hidden_layers, c.num_key_value_heads);
    let kv = |mode, scales| KvQuant { dtype: KvCacheDtype::Int8, mode, scales, k_mean: None, rotate: None };
    let t = kv_scale_table(
        &c,
        WeightFormat::F16,
        Some(&kv(KvScaleMode::Calibrated, Some(KvScales { k: ones(l, h), v: ones(l, h) }))),
    );
    assert_eq!(t.unwrap().unwrap().len(), 2 * l * h);
    let e = kv_scale_table(&c, WeightFormat::F16, Some(&kv(KvScaleMode::Dynamic, None))).unwrap_err().to_string();
    assert!(e.contains("dynamic"), "{e}");
    let bad = Some(KvScales { k: ones(l, h + 1), v: ones(l, h) });
    let e = kv_scale_table(&c, WeightFormat::F16, Some(&kv(KvScaleMode::Calibrated, bad))).unwrap_err().to_string();
    assert!(e.contains("KV scales must be"), "{e}");
    let e = kv_scale_table(&c, WeightFormat::F32, Some(&kv(KvScaleMode::Calibrated, None))).unwrap_err().to_string();
    assert!(e.contains("fp32"), "{e}");
    assert!(kv_scale_table(&c, WeightFormat::F16, None).unwrap().is_none());
}
