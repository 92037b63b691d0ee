//! Checkpoint loaders: GGUF (tiny files written here, plus the real SmolLM2 file when present) and
//! HF safetensors directories, including malformed inputs that must fail with clear errors.
mod common;

use half::f16;
use safetensors::{tensor::TensorView, Dtype};
use std::path::{Path, PathBuf};
use trtforge::model::gguf::{parse_header, GgufFile, GgufValue};
use trtforge::model::hf::{save_safetensors, HfCheckpoint};
use trtforge::model::weights::{param_shape, tensor_name, NameScheme, TensorSource};
use trtforge::model::{LlamaConfig, ModelWeights, Param, Tensor};
use trtforge::util::SplitMix64;
use trtforge::Error;

// ---------------------------------------------------------------------------------------------
// A minimal GGUF v3 writer (test-only).

const ALIGN: usize = 32;
const T_F32: u32 = 0;
const T_F16: u32 = 1;
const T_Q4_0: u32 = 2;
const T_Q4_1: u32 = 3;
const T_Q8_0: u32 = 8;

fn gguf_str(s: &str) -> Vec<u8> {
    let mut b = (s.len() as u64).to_le_bytes().to_vec();
    b.extend(s.as_bytes());
    b
}

#[derive(Default)]
struct GgufWriter {
    /// (key, value type, encoded value)
    kv: Vec<(String, u32, Vec<u8>)>,
    /// (name, dims ne0-first, ggml type, data)
    tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
}

impl GgufWriter {
    fn u32(&mut self, key: &str, v: u32) -> &mut Self {
        self.kv.push((key.into(), 4, v.to_le_bytes().to_vec()));
        self
    }
    fn f32(&mut self, key: &str, v: f32) -> &mut Self {
        self.kv.push((key.into(), 6, v.to_le_bytes().to_vec()));
        self
    }
    fn str(&mut self, key: &str, v: &str) -> &mut Self {
        self.kv.push((key.into(), 8, gguf_str(v)));
        self
    }
    fn str_array(&mut self, key: &str, v: &[&str]) -> &mut Self {
        let mut b = 8u32.to_le_bytes().to_vec();
        b.extend((v.len() as u64).to_le_bytes());
        v.iter().for_each(|s| b.extend(gguf_str(s)));
        self.kv.push((key.into(), 9, b));
        self
    }
    fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, data: Vec<u8>) -> &mut Self {
        self.tensors.push((name.into(), dims.to_vec(), ty, data));
        self
    }
    fn f32_tensor(&mut self, name: &str, t: &Tensor) -> &mut Self {
        let dims: Vec<u64> = t.shape.iter().rev().map(|&d| d as u64).collect();
        self.tensor(name, &dims, T_F32, t.data.iter().flat_map(|x| x.to_le_bytes()).collect())
    }
    /// The file: header, metadata, tensor infos, padding, data (each tensor aligned, no trailing pad).
    fn bytes(&self) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend((self.tensors.len() as u64).to_le_bytes());
        b.extend((self.kv.len() as u64).to_le_bytes());
        for (k, ty, v) in &self.kv {
            b.extend(gguf_str(k));
            b.extend(ty.to_le_bytes());
            b.extend(v);
        }
        let mut offset = 0usize;
        for (name, dims, ty, data) in &self.tensors {
            b.extend(gguf_str(name));
            b.extend((dims.len() as u32).to_le_bytes());
            dims.iter().for_each(|d| b.extend(d.to_le_bytes()));
            b.extend(ty.to_le_bytes());
            b.extend((offset as u64).to_le_bytes());
            offset = (offset + data.len()).next_multiple_of(ALIGN);
        }
        for (_, _, _, data) in &self.tensors {
            b.resize(b.len().next_multiple_of(ALIGN), 0);
            b.extend(data);
        }
        b
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn open_bytes(bytes: &[u8]) -> (tempfile::TempDir, Result<GgufFile, Error>) {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "t.gguf", bytes);
    let f = GgufFile::open(&p);
    (dir, f)
}

fn err_text<T>(r: Result<T, Error>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

fn assert_err_contains<T>(r: Result<T, Error>, needles: &[&str]) {
    let msg = err_text(r);
    for n in needles {
        assert!(msg.contains(n), "error {msg:?} should mention {n:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Dequantization against per-block formulas computed here.

fn half_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// The 4-bit value of weight `i` (0..32) of a block whose nibble bytes start at `qs`.
fn nibble(block: &[u8], qs: usize, i: usize) -> u8 {
    let byte = block[qs + i % 16];
    if i < 16 {
        byte & 0x0F
    } else {
        byte >> 4
    }
}

fn expect_q4_0(blocks: &[u8]) -> Vec<f32> {
    blocks.chunks(18).flat_map(|b| (0..32).map(move |i| half_at(b, 0) * (nibble(b, 2, i) as f32 - 8.0))).collect()
}
fn expect_q4_1(blocks: &[u8]) -> Vec<f32> {
    blocks
        .chunks(20)
        .flat_map(|b| (0..32).map(move |i| half_at(b, 0) * nibble(b, 4, i) as f32 + half_at(b, 2)))
        .collect()
}
fn expect_q8_0(blocks: &[u8]) -> Vec<f32> {
    blocks.chunks(34).flat_map(|b| (0..32).map(move |i| half_at(b, 0) * (b[2 + i] as i8) as f32)).collect()
}

/// Random blocks of `block_bytes` whose first `n_halves` f16 fields are sane scales in [-1, 1).
fn random_blocks(rng: &mut SplitMix64, n_blocks: usize, block_bytes: usize, n_halves: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..n_blocks {
        for _ in 0..n_halves {
            out.extend(f16::from_f32(rng.next_f32() * 2.0 - 1.0).to_le_bytes());
        }
        out.extend((2 * n_halves..block_bytes).map(|_| rng.next_u64() as u8));
    }
    out
}

/// A GGUF with one (2 rows × 64 cols) tensor per supported type, and the expected f32 values.
fn typed_file() -> (Vec<u8>, Vec<(&'static str, Vec<f32>)>) {
    let mut rng = SplitMix64(7);
    let vals: Vec<f32> = (0..128).map(|_| rng.next_f32() * 4.0 - 2.0).collect();
    let halves: Vec<f16> = vals.iter().map(|&v| f16::from_f32(v)).collect();
    let q40 = random_blocks(&mut rng, 4, 18, 1);
    let q41 = random_blocks(&mut rng, 4, 20, 2);
    let q80 = random_blocks(&mut rng, 4, 34, 1);
    let mut w = GgufWriter::default();
    w.str("general.architecture", "test").u32("general.alignment", ALIGN as u32);
    w.tensor("t_f32", &[64, 2], T_F32, vals.iter().flat_map(|x| x.to_le_bytes()).collect());
    w.tensor("t_f16", &[64, 2], T_F16, halves.iter().flat_map(|x| x.to_le_bytes()).collect());
    w.tensor("t_q4_0", &[64, 2], T_Q4_0, q40.clone());
    w.tensor("t_q4_1", &[64, 2], T_Q4_1, q41.clone());
    w.tensor("t_q8_0", &[64, 2], T_Q8_0, q80.clone());
    let expected = vec![
        ("t_f32", vals.clone()),
        ("t_f16", halves.iter().map(|h| h.to_f32()).collect()),
        ("t_q4_0", expect_q4_0(&q40)),
        ("t_q4_1", expect_q4_1(&q41)),
        ("t_q8_0", expect_q8_0(&q80)),
    ];
    (w.bytes(), expected)
}

#[test]
fn gguf_dequantizes_every_supported_type() {
    let (bytes, expected) = typed_file();
    let (_dir, f) = open_bytes(&bytes);
    let f = f.unwrap();
    assert_eq!(f.version, 3);
    assert_eq!(f.get_str("general.architecture").unwrap(), "test");
    for (name, want) in expected {
        let t = f.tensor(name, &[2, 64]).unwrap().unwrap();
        assert_eq!(t.shape, vec![2, 64]);
        assert_eq!(t.data, want, "{name}");
    }
    assert!(f.tensor("absent", &[2, 64]).unwrap().is_none());
}

#[test]
fn gguf_blocks_by_hand() {
    // Q4_1: d = 0.25, m = 1, byte 0 = 0xF3 → w0 = 0.25*3 + 1, w16 = 0.25*15 + 1, others m.
    let mut q41 = [0u8; 20];
    q41[..2].copy_from_slice(&f16::from_f32(0.25).to_le_bytes());
    q41[2..4].copy_from_slice(&f16::from_f32(1.0).to_le_bytes());
    q41[4] = 0xF3;
    // Q8_0: d = 0.5, q[0] = -4, q[31] = 127.
    let mut q80 = [0u8; 34];
    q80[..2].copy_from_slice(&f16::from_f32(0.5).to_le_bytes());
    q80[2] = (-4i8) as u8;
    q80[33] = 127;
    let mut w = GgufWriter::default();
    w.tensor("a", &[32], T_Q4_1, q41.to_vec()).tensor("b", &[32], T_Q8_0, q80.to_vec());
    let (_dir, f) = open_bytes(&w.bytes());
    let f = f.unwrap();
    let a = f.tensor("a", &[32]).unwrap().unwrap().data;
    assert_eq!((a[0], a[16], a[1], a[17]), (1.75, 4.75, 1.0, 1.0));
    let b = f.tensor("b", &[32]).unwrap().unwrap().data;
    assert_eq!((b[0], b[1], b[31]), (-2.0, 0.0, 63.5));
}

// ---------------------------------------------------------------------------------------------
// Tiny whole models, written as GGUF and as HF checkpoints, loaded back exactly.

fn tiny_config(tied: bool) -> LlamaConfig {
    LlamaConfig {
        vocab_size: 64,
        hidden_size: 64,
        intermediate_size: 96,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 16,
        rope_theta: 10000.0,
        rope_scaling: None,
        rms_norm_eps: 1e-5,
        tie_word_embeddings: tied,
        max_position_embeddings: 128,
        bos_token_id: Some(1),
        eos_token_id: Some(2),
    }
}

/// llama.cpp's converter permutation (the inverse of what the loader undoes): GGUF row
/// h*hd + 2*j + e holds HF row h*hd + e*hd/2 + j.
fn permute_like_llama_cpp(t: &Tensor, n_head: usize) -> Tensor {
    let (rows, cols) = (t.rows(), t.cols());
    let hd = rows / n_head;
    let mut out = Tensor::zeros(t.shape.clone());
    for h in 0..n_head {
        for j in 0..hd / 2 {
            for e in 0..2 {
                let (g, r) = (h * hd + 2 * j + e, h * hd + e * hd / 2 + j);
                out.data[g * cols..(g + 1) * cols].copy_from_slice(t.row(r));
            }
        }
    }
    out
}

fn llama_metadata(w: &mut GgufWriter, c: &LlamaConfig) {
    w.str("general.architecture", "llama")
        .u32("llama.block_count", c.num_hidden_layers as u32)
        .u32("llama.embedding_length", c.hidden_size as u32)
        .u32("llama.feed_forward_length", c.intermediate_size as u32)
        .u32("llama.attention.head_count", c.num_attention_heads as u32)
        .u32("llama.attention.head_count_kv", c.num_key_value_heads as u32)
        .u32("llama.context_length", c.max_position_embeddings as u32)
        .f32("llama.rope.freq_base", c.rope_theta)
        .f32("llama.attention.layer_norm_rms_epsilon", c.rms_norm_eps)
        .u32("tokenizer.ggml.bos_token_id", 1)
        .u32("tokenizer.ggml.eos_token_id", 2);
    let tokens: Vec<String> = (0..c.vocab_size).map(|i| format!("t{i}")).collect();
    w.str_array("tokenizer.ggml.tokens", &tokens.iter().map(String::as_str).collect::<Vec<_>>());
}

/// The GGUF of `m` (F32 tensors, Q/K permuted as llama.cpp does), leaving out `skip`.
fn model_gguf(m: &ModelWeights, skip: Option<Param>) -> Vec<u8> {
    let c = &m.config;
    let mut w = GgufWriter::default();
    llama_metadata(&mut w, c);
    for p in m.params().into_iter().filter(|&p| Some(p) != skip) {
        let t = m.get(p);
        let t = match p {
            Param::Wq(_) => permute_like_llama_cpp(t, c.num_attention_heads),
            Param::Wk(_) => permute_like_llama_cpp(t, c.num_key_value_heads),
            _ => t.clone(),
        };
        w.f32_tensor(&tensor_name(p, NameScheme::Gguf), &t);
    }
    w.bytes()
}

fn assert_same_weights(a: &ModelWeights, b: &ModelWeights) {
    assert_eq!(a.config, b.config);
    assert_eq!(a.params(), b.params());
    for p in a.params() {
        assert_eq!(a.get(p), b.get(p), "{p:?}");
    }
}

#[test]
fn gguf_tiny_model_round_trips_with_qk_unpermuted() {
    for tied in [false, true] {
        let m = ModelWeights::random(tiny_config(tied), 42).unwrap();
        let (_dir, f) = open_bytes(&model_gguf(&m, None));
        let f = f.unwrap();
        let cfg = f.llama_config().unwrap();
        assert_eq!(cfg, tiny_config(tied));
        let loaded = ModelWeights::load(cfg, &f).unwrap();
        assert_same_weights(&m, &loaded);
    }
}

fn config_json(c: &LlamaConfig) -> String {
    serde_json::json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size,
        "intermediate_size": c.intermediate_size,
        "num_hidden_layers": c.num_hidden_layers,
        "num_attention_heads": c.num_attention_heads,
        "num_key_value_heads": c.num_key_value_heads,
        "rope_theta": c.rope_theta,
        "rms_norm_eps": c.rms_norm_eps,
        "tie_word_embeddings": c.tie_word_embeddings,
        "max_position_embeddings": c.max_position_embeddings,
        "bos_token_id": 1,
        "eos_token_id": 2,
    })
    .to_string()
}

fn hf_tensors(m: &ModelWeights) -> Vec<(String, &Tensor)> {
    m.params().into_iter().map(|p| (tensor_name(p, NameScheme::Hf), m.get(p))).collect()
}

#[test]
fn hf_single_file_round_trips() {
    let m = ModelWeights::random(tiny_config(false), 3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "config.json", config_json(&m.config).as_bytes());
    save_safetensors(&dir.path().join("model.safetensors"), &hf_tensors(&m)).unwrap();
    assert!(!dir.path().join("model.safetensors.tmp").exists());
    let ck = HfCheckpoint::open(dir.path()).unwrap();
    assert_eq!(ck.config(), &m.config);
    let loaded = ModelWeights::load(ck.config().clone(), &ck).unwrap();
    assert_same_weights(&m, &loaded);
}

/// A sharded checkpoint: the first half of the tensors in shard 1, the rest in shard 2.
fn write_sharded(dir: &Path, m: &ModelWeights) -> Vec<(String, String)> {
    write(dir, "config.json", config_json(&m.config).as_bytes());
    let all = hf_tensors(m);
    let (a, b) = all.split_at(all.len() / 2);
    let names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];
    let mut map = Vec::new();
    for (part, file) in [a, b].into_iter().zip(names) {
        save_safetensors(&dir.join(file), part).unwrap();
        map.extend(part.iter().map(|(n, _)| (n.clone(), file.to_string())));
    }
    map
}

fn write_index(dir: &Path, map: &[(String, String)]) {
    let weight_map: serde_json::Map<String, serde_json::Value> =
        map.iter().map(|(n, f)| (n.clone(), f.clone().into())).collect();
    let index = serde_json::json!({ "metadata": {}, "weight_map": weight_map });
    write(dir, "model.safetensors.index.json", index.to_string().as_bytes());
}

#[test]
fn hf_sharded_round_trips() {
    let m = ModelWeights::random(tiny_config(true), 5).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let map = write_sharded(dir.path(), &m);
    write_index(dir.path(), &map);
    let ck = HfCheckpoint::open(dir.path()).unwrap();
    let loaded = ModelWeights::load(ck.config().clone(), &ck).unwrap();
    assert_same_weights(&m, &loaded);
}

#[test]
fn hf_f16_and_bf16_tensors_convert() {
    let dir = tempfile::tempdir().unwrap();
    let h: Vec<u8> = [1.5f32, -0.25].iter().flat_map(|&x| f16::from_f32(x).to_le_bytes()).collect();
    let b: Vec<u8> = [3.0f32, 0.5].iter().flat_map(|&x| half::bf16::from_f32(x).to_le_bytes()).collect();
    let views = [
        ("h", TensorView::new(Dtype::F16, vec![2], &h).unwrap()),
        ("b", TensorView::new(Dtype::BF16, vec![2], &b).unwrap()),
    ];
    safetensors::serialize_to_file(views, None, &dir.path().join("model.safetensors")).unwrap();
    write(dir.path(), "config.json", config_json(&tiny_config(false)).as_bytes());
    let ck = HfCheckpoint::open(dir.path()).unwrap();
    assert_eq!(ck.tensor("h", &[2]).unwrap().unwrap().data, vec![1.5, -0.25]);
    assert_eq!(ck.tensor("b", &[2]).unwrap().unwrap().data, vec![3.0, 0.5]);
}

// ---------------------------------------------------------------------------------------------
// The real SmolLM2 GGUF.

#[test]
fn smollm2_gguf_config_and_load() {
    let Some(path) = common::model_file(common::SMOLLM2_GGUF) else {
        return;
    };
    let f = GgufFile::open(&path).unwrap();
    assert_eq!((f.version, f.tensors.len(), f.metadata.len()), (3, 272, 33));
    let c = f.llama_config().unwrap();
    assert_eq!(c.num_hidden_layers, 30);
    assert_eq!(c.hidden_size, 576);
    assert_eq!(c.intermediate_size, 1536);
    assert_eq!((c.num_attention_heads, c.num_key_value_heads, c.head_dim), (9, 3, 64));
    assert_eq!(c.vocab_size, 49152);
    assert_eq!(c.rope_theta, 100000.0);
    assert_eq!(c.rms_norm_eps, 1e-5);
    assert_eq!(c.max_position_embeddings, 8192);
    assert!(c.tie_word_embeddings);
    assert_eq!((c.bos_token_id, c.eos_token_id), (Some(1), Some(2)));
    assert_eq!(c, LlamaConfig::preset("smollm2-135m").unwrap());
    assert_eq!(f.get_str_array("tokenizer.ggml.tokens").unwrap().len(), 49152);
    assert_eq!(f.get_str("tokenizer.ggml.model").unwrap(), "gpt2");

    let t0 = std::time::Instant::now();
    let m = ModelWeights::load(c.clone(), &f).unwrap();
    eprintln!("SmolLM2 GGUF dequantized in {:.2} s", t0.elapsed().as_secs_f64());
    assert!(m.lm_head.is_none());
    let mut n = 0;
    for p in m.params() {
        let t = m.get(p);
        assert_eq!(t.shape, param_shape(p, &c), "{p:?}");
        assert!(t.data.iter().all(|x| x.is_finite()), "{p:?} has non-finite values");
        n += t.numel();
    }
    assert_eq!(n, c.param_count());
    assert!((134_000_000..135_000_000).contains(&n), "{n} parameters");
}

// ---------------------------------------------------------------------------------------------
// Malformed GGUF files: clear errors, never a panic.

#[test]
fn gguf_every_truncation_is_an_error() {
    let (bytes, _) = typed_file();
    let p = Path::new("cut.gguf");
    assert!(parse_header(p, &bytes).is_ok());
    for cut in 0..bytes.len() {
        assert!(parse_header(p, &bytes[..cut]).is_err(), "prefix of {cut} bytes parsed");
    }
}

#[test]
fn gguf_bad_magic() {
    let (mut bytes, _) = typed_file();
    bytes[..4].copy_from_slice(b"GGML");
    let (_d, f) = open_bytes(&bytes);
    assert_err_contains(f, &["t.gguf", "bad magic: expected GGUF", "GGML"]);
}

#[test]
fn gguf_absurd_counts() {
    let (bytes, _) = typed_file();
    let mut b = bytes.clone();
    b[8..16].copy_from_slice(&(1u64 << 60).to_le_bytes());
    assert_err_contains(parse_header(Path::new("x"), &b), &["tensor count 1152921504606846976"]);
    let mut b = bytes.clone();
    b[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert_err_contains(parse_header(Path::new("x"), &b), &["metadata count"]);
    // An array that claims more elements than bytes remain.
    let mut w = GgufWriter::default();
    w.str_array("tokens", &["a", "b"]);
    let mut b = w.bytes();
    let count_at = 24 + 8 + "tokens".len() + 4 + 4;
    b[count_at..count_at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert_err_contains(parse_header(Path::new("x"), &b), &["array count 1099511627776", "bytes left"]);
}

#[test]
fn gguf_string_length_past_end() {
    let (mut bytes, _) = typed_file();
    // The first metadata key's length field sits right after the 24-byte fixed header.
    bytes[24..32].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert_err_contains(parse_header(Path::new("x"), &bytes), &["string length 1099511627776", "past end"]);
}

#[test]
fn gguf_too_many_dims() {
    let mut w = GgufWriter::default();
    w.tensor("blk.0.attn_q.weight", &[32, 1, 1, 1, 1], T_F32, vec![0; 128]);
    assert_err_contains(parse_header(Path::new("x"), &w.bytes()), &["blk.0.attn_q.weight", "n_dims 5"]);
}

#[test]
fn gguf_tensor_data_past_eof() {
    let mut w = GgufWriter::default();
    w.tensor("blk.0.attn_q.weight", &[32, 2], T_Q4_0, vec![0; 2 * 18]);
    let bytes = w.bytes();
    let (_d, f) = open_bytes(&bytes[..bytes.len() - 1]);
    let msg = err_text(f);
    assert!(
        msg.contains("tensor \"blk.0.attn_q.weight\": data [") && msg.contains("extends past end of file"),
        "{msg}"
    );
}

#[test]
fn gguf_unknown_and_unsupported_types() {
    for (ty, name) in [(99u32, "unknown"), (34, "TQ1_0"), (35, "TQ2_0"), (39, "MXFP4")] {
        let mut w = GgufWriter::default();
        w.tensor("blk.3.ffn_up.weight", &[256], ty, vec![0; 256]);
        let r = parse_header(Path::new("x"), &w.bytes());
        assert!(matches!(r, Err(Error::Unsupported(_))));
        assert_err_contains(r, &["blk.3.ffn_up.weight", &format!("ggml type {ty} ({name})")]);
    }
}

#[test]
fn gguf_row_not_multiple_of_block() {
    let mut w = GgufWriter::default();
    w.tensor("w", &[48, 1], T_Q8_0, vec![0; 34 * 2]);
    assert_err_contains(parse_header(Path::new("x"), &w.bytes()), &["row length 48", "block size 32"]);
}

#[test]
fn gguf_shape_mismatch_names_tensor_and_shapes() {
    let (bytes, _) = typed_file();
    let (_d, f) = open_bytes(&bytes);
    let f = f.unwrap();
    assert_err_contains(f.tensor("t_q4_0", &[64, 2]), &["t_q4_0", "[2, 64]", "expected [64, 2]"]);
}

#[test]
fn gguf_missing_tensor_is_named_by_load() {
    let m = ModelWeights::random(tiny_config(false), 1).unwrap();
    let (_d, f) = open_bytes(&model_gguf(&m, Some(Param::WDown(1))));
    let f = f.unwrap();
    let cfg = f.llama_config().unwrap();
    assert_err_contains(ModelWeights::load(cfg, &f), &["missing tensor \"blk.1.ffn_down.weight\""]);
}

#[test]
fn layer_count_disagreeing_with_the_tensors_is_refused() {
    // A GGUF whose block_count says one layer fewer than its tensors (llama.cpp refuses it; it ran a
    // shorter model), and one that says more; an HF config likewise. `summarize` (info) checks the table
    // without reading weights.
    let m = ModelWeights::random(tiny_config(false), 3).unwrap();
    let c = &m.config;
    for (layers, want) in [
        (c.num_hidden_layers - 1, "holds tensors of layer 1 but its config says 1 layers"),
        (3, "missing tensor \"blk.2."),
    ] {
        let mut short = c.clone();
        short.num_hidden_layers = layers;
        let mut w = GgufWriter::default();
        llama_metadata(&mut w, &short);
        for p in m.params() {
            let t = match p {
                Param::Wq(_) => permute_like_llama_cpp(m.get(p), c.num_attention_heads),
                Param::Wk(_) => permute_like_llama_cpp(m.get(p), c.num_key_value_heads),
                _ => m.get(p).clone(),
            };
            w.f32_tensor(&tensor_name(p, NameScheme::Gguf), &t);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "m.gguf", &w.bytes());
        let f = GgufFile::open(&path).unwrap();
        assert_err_contains(ModelWeights::load(f.llama_config().unwrap(), &f), &[want]);
        assert_err_contains(trtforge::model::load::summarize(path.to_str().unwrap()), &[want]);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut short = c.clone();
    short.num_hidden_layers = 1;
    write(dir.path(), "config.json", config_json(&short).as_bytes());
    save_safetensors(&dir.path().join("model.safetensors"), &hf_tensors(&m)).unwrap();
    let ck = HfCheckpoint::open(dir.path()).unwrap();
    assert_err_contains(ModelWeights::load(ck.config().clone(), &ck), &["layer 1", "num_hidden_layers"]);
}

#[test]
fn gguf_metadata_errors() {
    let mut w = GgufWriter::default();
    w.str("general.architecture", "llama").u32("llama.embedding_length", 64);
    let (_d, f) = open_bytes(&w.bytes());
    let f = f.unwrap();
    assert_err_contains(f.llama_config(), &["missing required metadata key", "llama.attention.head_count"]);
    assert_err_contains(f.get_u32("general.architecture"), &["general.architecture", "is a string, not a u32"]);
    assert_eq!(f.metadata.get("llama.embedding_length").and_then(GgufValue::as_u64), Some(64));

    let mut w = GgufWriter::default();
    w.str("general.architecture", "gpt2");
    let (_d, f) = open_bytes(&w.bytes());
    let r = f.unwrap().llama_config();
    assert!(matches!(r, Err(Error::Unsupported(_))));
    assert_err_contains(r, &["\"gpt2\""]);

    let mut w = GgufWriter::default();
    llama_metadata(&mut w, &tiny_config(false));
    w.str("llama.rope.scaling.type", "yarn");
    let (_d, f) = open_bytes(&w.bytes());
    assert_err_contains(f.unwrap().llama_config(), &["llama.rope.scaling.type = \"yarn\""]);
}

// ---------------------------------------------------------------------------------------------
// Malformed HF checkpoints.

fn hf_dir_with(model_bytes: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "config.json", config_json(&tiny_config(false)).as_bytes());
    write(dir.path(), "model.safetensors", model_bytes);
    dir
}

#[test]
fn hf_corrupt_safetensors_header() {
    let mut bad_json = 10u64.to_le_bytes().to_vec();
    bad_json.extend(b"{not json}");
    let dir = hf_dir_with(&bad_json);
    assert_err_contains(HfCheckpoint::open(dir.path()), &["model.safetensors", "invalid safetensors"]);

    let mut too_long = 1000u64.to_le_bytes().to_vec();
    too_long.extend(b"{}");
    let dir = hf_dir_with(&too_long);
    assert_err_contains(HfCheckpoint::open(dir.path()), &["model.safetensors", "invalid safetensors"]);

    let dir = hf_dir_with(b"abc");
    assert_err_contains(HfCheckpoint::open(dir.path()), &["model.safetensors", "invalid safetensors"]);
}

#[test]
fn hf_unsupported_dtype() {
    let data = [0u8; 16];
    let view = TensorView::new(Dtype::I64, vec![2], &data).unwrap();
    let bytes = safetensors::serialize([("model.norm.weight", view)], None).unwrap();
    let dir = hf_dir_with(&bytes);
    let ck = HfCheckpoint::open(dir.path()).unwrap();
    let r = ck.tensor("model.norm.weight", &[2]);
    assert!(matches!(r, Err(Error::Unsupported(_))));
    assert_err_contains(r, &["model.norm.weight", "I64"]);
}

#[test]
fn hf_shape_mismatch() {
    let t = Tensor::new(vec![2, 3], vec![0.0; 6]);
    let dir = tempfile::tempdir().unwrap();
    save_safetensors(&dir.path().join("model.safetensors"), &[("w".into(), &t)]).unwrap();
    write(dir.path(), "config.json", config_json(&tiny_config(false)).as_bytes());
    let ck = HfCheckpoint::open(dir.path()).unwrap();
    assert_err_contains(ck.tensor("w", &[3, 2]), &["\"w\"", "[2, 3]", "expected [3, 2]", "model.safetensors"]);
}

#[test]
fn hf_missing_shard_and_bad_index() {
    let m = ModelWeights::random(tiny_config(true), 9).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let map = write_sharded(dir.path(), &m);
    write_index(dir.path(), &map);
    std::fs::remove_file(dir.path().join("model-00002-of-00002.safetensors")).unwrap();
    assert_err_contains(HfCheckpoint::open(dir.path()), &["model-00002-of-00002.safetensors", "missing"]);

    // A weight_map entry pointing at a shard that lacks the tensor.
    let dir = tempfile::tempdir().unwrap();
    let mut map = write_sharded(dir.path(), &m);
    map[0].1 = "model-00002-of-00002.safetensors".into();
    write_index(dir.path(), &map);
    assert_err_contains(HfCheckpoint::open(dir.path()), &[&map[0].0, "lacks it"]);

    write(dir.path(), "model.safetensors.index.json", b"{\"weight_map\": 3}");
    assert_err_contains(HfCheckpoint::open(dir.path()), &["index.json", "invalid index JSON"]);
}

#[test]
fn hf_missing_files_and_config_fields() {
    let dir = tempfile::tempdir().unwrap();
    assert_err_contains(HfCheckpoint::open(dir.path()), &["config.json"]);
    write(dir.path(), "config.json", config_json(&tiny_config(false)).as_bytes());
    assert_err_contains(HfCheckpoint::open(dir.path()), &["no model.safetensors"]);
    write(dir.path(), "config.json", br#"{"vocab_size": 64, "num_attention_heads": 4}"#);
    assert_err_contains(HfCheckpoint::open(dir.path()), &["config.json", "missing required field \"hidden_size\""]);
}

#[test]
fn hf_missing_tensor_is_named_by_load() {
    let m = ModelWeights::random(tiny_config(false), 2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "config.json", config_json(&m.config).as_bytes());
    let mut tensors = hf_tensors(&m);
    tensors.retain(|(n, _)| n != "model.layers.0.self_attn.k_proj.weight");
    save_safetensors(&dir.path().join("model.safetensors"), &tensors).unwrap();
    let ck = HfCheckpoint::open(dir.path()).unwrap();
    assert_err_contains(
        ModelWeights::load(ck.config().clone(), &ck),
        &["missing tensor \"model.layers.0.self_attn.k_proj.weight\""],
    );
}

/// Tensors the Llama graph does not read (q/k/v biases under `attention_bias: false`, a stored head with tied
/// embeddings) are reported, as transformers warns of weights not used; a plain checkpoint reports none.
#[test]
fn unused_checkpoint_tensors_are_reported() {
    let m = ModelWeights::random(tiny_config(false), 5).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "config.json", config_json(&m.config).as_bytes());
    let bias = Tensor::zeros(vec![m.config.hidden_size]);
    let mut tensors = hf_tensors(&m);
    save_safetensors(&dir.path().join("model.safetensors"), &tensors).unwrap();
    let plain = trtforge::model::load::load(dir.path().to_str().unwrap()).unwrap();
    assert!(plain.unused.is_empty() && plain.unused_warning().is_none(), "{:?}", plain.unused);
    tensors.push(("model.layers.0.self_attn.q_proj.bias".into(), &bias));
    tensors.push(("model.layers.1.self_attn.q_proj.bias".into(), &bias));
    save_safetensors(&dir.path().join("model.safetensors"), &tensors).unwrap();
    let m2 = trtforge::model::load::load(dir.path().to_str().unwrap()).unwrap();
    assert_eq!(m2.unused, ["model.layers.0.self_attn.q_proj.bias", "model.layers.1.self_attn.q_proj.bias"]);
    let w = m2.unused_warning().unwrap();
    assert!(w.starts_with("2 tensors of the checkpoint are not used") && w.contains("attention_bias"), "{w}");
}
