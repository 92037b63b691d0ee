//! KV-cache consistency of the CPU backend: prefill-all, prefill+decode and batched runs must agree.
//! (Absolute correctness is checked against HF transformers in tests/hf_golden.rs.)
use std::sync::Arc;
use trtforge::backend::{cpu::CpuBackend, Backend, Logits, SeqChunk};
use trtforge::model::{LlamaConfig, ModelWeights};

/// Same math, different association order (GEMM vs GEMV): f32 rounding only.
const CACHE_TOL: f32 = 1e-4;

fn tiny() -> Arc<ModelWeights> {
    Arc::new(ModelWeights::random(LlamaConfig::preset("tiny").unwrap(), 7).unwrap())
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "logit rows of different lengths");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn prefill_then_decode_matches_full_prefill() {
    let w = tiny();
    let toks: Vec<u32> = (0..12).map(|i| (i * 37 + 5) % 256).collect();
    let mut full = CpuBackend::new(w.clone(), 1, 64).unwrap();
    let all = full.forward(&[SeqChunk { slot: 0, tokens: &toks }], Logits::All).unwrap();
    assert_eq!(all.rows(), 12);

    let mut inc = CpuBackend::new(w, 1, 64).unwrap();
    let first = inc.forward(&[SeqChunk { slot: 0, tokens: &toks[..7] }], Logits::All).unwrap();
    for r in 0..7 {
        assert!(max_diff(first.row(r), all.row(r)) < CACHE_TOL);
    }
    for i in 7..12 {
        let out = inc.forward(&[SeqChunk { slot: 0, tokens: &toks[i..i + 1] }], Logits::Last).unwrap();
        let d = max_diff(out.row(0), all.row(i));
        assert!(d < CACHE_TOL, "position {i}: max diff {d}");
    }
    assert_eq!(inc.seq_len(0), 12);
}

#[test]
fn batched_sequences_match_single_runs() {
    let w = tiny();
    let a: Vec<u32> = (0..9).map(|i| (i * 11 + 3) % 256).collect();
    let b: Vec<u32> = (0..4).map(|i| (i * 29 + 1) % 256).collect();
    let mut single = CpuBackend::new(w.clone(), 1, 32).unwrap();
    let la = single.forward(&[SeqChunk { slot: 0, tokens: &a }], Logits::Last).unwrap();
    single.reset(0);
    let lb = single.forward(&[SeqChunk { slot: 0, tokens: &b }], Logits::Last).unwrap();

    let mut batched = CpuBackend::new(w, 2, 32).unwrap();
    let out =
        batched.forward(&[SeqChunk { slot: 1, tokens: &b }, SeqChunk { slot: 0, tokens: &a }], Logits::Last).unwrap();
    assert!(max_diff(out.row(0), lb.row(0)) < CACHE_TOL);
    assert!(max_diff(out.row(1), la.row(0)) < CACHE_TOL);
}

#[test]
fn over_capacity_and_bad_tokens_are_errors() {
    let w = tiny();
    let mut be = CpuBackend::new(w.clone(), 1, 8).unwrap();
    let long: Vec<u32> = vec![1; 9];
    let e = be.forward(&[SeqChunk { slot: 0, tokens: &long }], Logits::Last).unwrap_err();
    assert!(e.to_string().contains("exceeds the KV cache capacity"), "{e}");
    let e = be.forward(&[SeqChunk { slot: 0, tokens: &[999] }], Logits::Last).unwrap_err();
    assert!(e.to_string().contains("outside the vocabulary"), "{e}");
    let e = be.forward(&[SeqChunk { slot: 3, tokens: &[1] }], Logits::Last).unwrap_err();
    assert!(e.to_string().contains("beyond the batch capacity"), "{e}");
    let e = CpuBackend::new(w, 1, 100_000).err().unwrap();
    assert!(e.to_string().contains("supports a context of 256"), "{e}");
}
