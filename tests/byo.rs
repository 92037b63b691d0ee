//! "Bring your own Llama" (#16): GGUF K-quant tensors, SentencePiece vocabularies, chat
//! templates and HF checkpoint details, each against an independent oracle (the `gguf`,
//! `sentencepiece` and `transformers` Python packages, and a numpy forward pass).
mod common;

use common::py;
use std::path::Path;
use trtforge::model::gguf::GgufFile;
use trtforge::model::weights::TensorSource;

/// Every ggml type trtforge reads: random blocks written by the `gguf` package dequantize to
/// exactly (bit for bit) what `gguf.quants.dequantize` computes.
#[test]
fn gguf_tensor_types_dequantize_bit_exactly() {
    if !py::have_modules(&["numpy", "gguf"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    py::run("gguf_quant_blocks.py", &[out, "7"]);
    let manifest: std::collections::BTreeMap<String, Vec<usize>> =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("manifest.json")).unwrap()).unwrap();
    let g = GgufFile::open(&dir.path().join("blocks.gguf")).unwrap();
    let want_types = ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "Q5_0", "Q5_1", "IQ4_NL", "Q4_0", "Q4_1", "Q8_0"];
    for t in want_types {
        assert!(manifest.contains_key(t), "oracle did not write {t}");
    }
    for (name, shape) in &manifest {
        let got = g.tensor(&format!("q.{name}"), shape).unwrap().unwrap();
        let want = read_f32(&dir.path().join(format!("{name}.f32")));
        assert_eq!(got.data.len(), want.len(), "{name}");
        let bad: Vec<usize> = (0..want.len()).filter(|&i| got.data[i].to_bits() != want[i].to_bits()).collect();
        assert!(
            bad.is_empty(),
            "{name}: {} of {} values differ; first at {}: trtforge {} vs gguf {}",
            bad.len(),
            want.len(),
            bad[0],
            got.data[bad[0]],
            want[bad[0]]
        );
    }
    // `info` reports each type with its parameter count.
    let types = g.tensor_dtypes();
    let q4k = types.iter().find(|(n, _, _)| n == "q.Q4_K").unwrap();
    assert_eq!((q4k.1.as_str(), q4k.2), ("Q4_K", 3 * 512));
}

fn read_f32(p: &Path) -> Vec<f32> {
    std::fs::read(p).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}
