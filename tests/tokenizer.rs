//! Tokenizer tests against golden ids from independent implementations
//! (`scripts/tokenizer_golden.py`: llama.cpp for SmolLM2's GGUF vocabulary, Python `tokenizers`
//! for the tiny tokenizer.json fixture).
//!
//! SmolLM2 tests need `models/` (`bash scripts/fetch_models.sh`): without it they print a SKIP line,
//! and under TRTFORGE_REQUIRE_MODELS=1 (scripts/test.sh, CI) they fail (`common::model_file`).
mod common;

use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use trtforge::model::chat::{ChatMessage, ChatTemplate};
use trtforge::model::tokenizer::{GgufVocab, Tokenizer};

/// The model's own chat template rendered (model::chat).
fn chat(tok: &Tokenizer, messages: &[ChatMessage], add_generation_prompt: bool) -> String {
    ChatTemplate::from_model(tok).unwrap().render(messages, add_generation_prompt).unwrap()
}
use trtforge::Error;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}
/// The Shakespeare texts under models/, by the suite's one skip policy.
fn texts_dir() -> Option<PathBuf> {
    common::model_file("shakespeare")
}
fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
fn ids_of(v: &Value) -> Vec<u32> {
    v.as_array().expect("id list").iter().map(|x| x.as_u64().expect("id") as u32).collect()
}
fn scratch_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("trtforge-tokenizer-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

// ---------------------------------------------------------------------------------------------
// A test-only GGUF metadata reader: just enough to pull the tokenizer keys out of the header.

#[derive(Debug, Clone)]
#[allow(dead_code)] // every value type is parsed (to skip it); only some are read
enum Meta {
    Uint(u64),
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Arr(Vec<Meta>),
}

struct GgufMeta<R: Read> {
    r: R,
}

impl<R: Read> GgufMeta<R> {
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        self.r.read_exact(&mut b).expect("GGUF header truncated");
        b
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes())
    }
    fn string(&mut self) -> String {
        let n = self.u64() as usize;
        assert!(n < 1 << 24, "absurd GGUF string length {n}");
        let mut b = vec![0u8; n];
        self.r.read_exact(&mut b).expect("GGUF string truncated");
        String::from_utf8(b).expect("GGUF string is not UTF-8")
    }
    fn value(&mut self, ty: u32) -> Meta {
        match ty {
            0 => Meta::Uint(u8::from_le_bytes(self.bytes()) as u64),
            1 => Meta::Int(i8::from_le_bytes(self.bytes()) as i64),
            2 => Meta::Uint(u16::from_le_bytes(self.bytes()) as u64),
            3 => Meta::Int(i16::from_le_bytes(self.bytes()) as i64),
            4 => Meta::Uint(self.u32() as u64),
            5 => Meta::Int(i32::from_le_bytes(self.bytes()) as i64),
            6 => Meta::Float(f32::from_le_bytes(self.bytes()) as f64),
            7 => Meta::Bool(self.bytes::<1>()[0] != 0),
            8 => Meta::Str(self.string()),
            9 => {
                let elem = self.u32();
                let n = self.u64() as usize;
                assert!(n < 1 << 24, "absurd GGUF array length {n}");
                Meta::Arr((0..n).map(|_| self.value(elem)).collect())
            }
            10 => Meta::Uint(self.u64()),
            11 => Meta::Int(self.u64() as i64),
            12 => Meta::Float(f64::from_le_bytes(self.bytes())),
            t => panic!("unknown GGUF value type {t}"),
        }
    }
    fn read_all(path: &Path) -> HashMap<String, Meta> {
        let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut g = GgufMeta { r: BufReader::new(f) };
        assert_eq!(&g.bytes::<4>(), b"GGUF", "not a GGUF file");
        let version = g.u32();
        assert!(version >= 2, "GGUF v{version} is too old");
        let _n_tensors = g.u64();
        let n_kv = g.u64();
        let mut kv = HashMap::new();
        for _ in 0..n_kv {
            let key = g.string();
            let ty = g.u32();
            kv.insert(key, g.value(ty));
        }
        kv
    }
}

fn gguf_vocab(path: &Path) -> GgufVocab {
    let kv = GgufMeta::<BufReader<std::fs::File>>::read_all(path);
    let s = |k: &str| match kv.get(k) {
        Some(Meta::Str(s)) => Some(s.clone()),
        _ => None,
    };
    let strs = |k: &str| match kv.get(k) {
        Some(Meta::Arr(a)) => a
            .iter()
            .map(|m| match m {
                Meta::Str(s) => s.clone(),
                other => panic!("{k}: expected strings, found {other:?}"),
            })
            .collect(),
        _ => Vec::new(),
    };
    let id = |k: &str| match kv.get(k) {
        Some(Meta::Uint(u)) => Some(*u as u32),
        Some(Meta::Int(i)) => Some(*i as u32),
        _ => None,
    };
    let types = match kv.get("tokenizer.ggml.token_type") {
        Some(Meta::Arr(a)) => a
            .iter()
            .map(|m| match m {
                Meta::Int(i) => *i as i32,
                Meta::Uint(u) => *u as i32,
                other => panic!("token_type: {other:?}"),
            })
            .collect(),
        _ => Vec::new(),
    };
    GgufVocab {
        model: s("tokenizer.ggml.model").unwrap_or_default(),
        pre: s("tokenizer.ggml.pre"),
        tokens: strs("tokenizer.ggml.tokens"),
        merges: strs("tokenizer.ggml.merges"),
        token_types: types,
        bos: id("tokenizer.ggml.bos_token_id"),
        eos: id("tokenizer.ggml.eos_token_id"),
        unk: id("tokenizer.ggml.unknown_token_id"),
        pad: id("tokenizer.ggml.padding_token_id"),
        add_bos: match kv.get("tokenizer.ggml.add_bos_token") {
            Some(Meta::Bool(b)) => Some(*b),
            _ => None,
        },
        chat_template: s("tokenizer.chat_template"),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// SmolLM2 (real GGUF vocabulary), shared by the tests of this binary.

struct Smol {
    vocab: GgufVocab,
    tok: Tokenizer,
    golden: Value,
}

fn smol() -> Option<&'static Smol> {
    static SMOL: OnceLock<Option<Smol>> = OnceLock::new();
    SMOL.get_or_init(|| {
        let path = common::model_file(common::SMOLLM2_GGUF)?;
        let vocab = gguf_vocab(&path);
        let tok = Tokenizer::from_gguf_vocab(vocab.clone()).expect("SmolLM2 GGUF vocabulary");
        let golden = read_json(&fixture("smollm2_tokenizer_golden.json"));
        Some(Smol { vocab, tok, golden })
    })
    .as_ref()
}

macro_rules! need_smol {
    ($name:expr) => {
        match smol() {
            Some(s) => s,
            None => {
                eprintln!("SKIP {}: the SmolLM2 GGUF is absent", $name);
                return;
            }
        }
    };
}

/// The play text a golden case covers, by character range; `None` when models/ is absent (a
/// failure under TRTFORGE_REQUIRE_MODELS=1).
fn play_slice(case: &Value) -> Option<String> {
    let name = case["file"].as_str().unwrap();
    let path = texts_dir()?.join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (a, b) = (case["char_start"].as_u64().unwrap() as usize, case["char_end"].as_u64().unwrap() as usize);
    Some(text.chars().skip(a).take(b - a).collect())
}

#[test]
fn smollm2_vocabulary_facts() {
    let s = need_smol!("smollm2_vocabulary_facts");
    let g = &s.golden["tokenizer"];
    assert_eq!(s.tok.vocab_size() as u64, g["vocab_size"].as_u64().unwrap());
    assert_eq!(s.vocab.merges.len() as u64, g["merges"].as_u64().unwrap());
    assert_eq!(s.tok.bos_id().map(u64::from), g["bos"].as_u64());
    assert_eq!(s.tok.eos_id().map(u64::from), g["eos"].as_u64());
    assert_eq!(s.tok.unk_id().map(u64::from), g["unk"].as_u64());
    assert_eq!(s.tok.pad_id().map(u64::from), g["pad"].as_u64());
    assert_eq!(s.tok.adds_bos(), g["add_bos"].as_bool().unwrap());
    assert!(s.tok.warnings().is_empty(), "{:?}", s.tok.warnings());
    assert_eq!(s.tok.token_to_id("<|im_end|>"), Some(2));
    assert_eq!(s.tok.id_to_token(1).as_deref(), Some("<|im_start|>"));
    assert_eq!(s.tok.eos_ids(), vec![2]);
    assert_eq!(
        s.tok.default_system_prompt(),
        Some("You are a helpful AI assistant named SmolLM, trained by Hugging Face")
    );
}

#[test]
fn smollm2_golden_ids() {
    let s = need_smol!("smollm2_golden_ids");
    for case in s.golden["strings"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let ids = s.tok.encode(text, false).unwrap();
        assert_eq!(ids, ids_of(&case["ids"]), "ids for {text:?}");
        // add_bos is off for SmolLM2: special tokens change nothing.
        assert_eq!(s.tok.encode(text, true).unwrap(), ids, "{text:?} with special tokens");
        assert_eq!(s.tok.decode(&ids, false).unwrap(), text, "decode of {text:?}");
    }
    let mut checked = 0;
    for case in s.golden["plays"].as_array().unwrap() {
        let Some(text) = play_slice(case) else {
            return;
        };
        let ids = s.tok.encode(&text, false).unwrap();
        assert_eq!(ids, ids_of(&case["ids"]), "ids for {case:?}", case = (&case["file"], &case["char_start"]));
        assert_eq!(s.tok.decode(&ids, false).unwrap(), text);
        checked += 1;
    }
    assert!(checked >= 4);
}

/// Every byte-level BPE pre-tokenizer (`tokenizer.ggml.pre`) trtforge reads gives llama.cpp's own ids
/// (tests/fixtures/gguf_pre_golden.json, from llama-cpp-python by scripts/gguf_pre_golden.py) on SmolLM2's
/// vocabulary for texts that tell the pre-tokenizers apart, and adds bos by default exactly where llama.cpp does.
#[test]
fn gguf_pre_tokenizers_match_llama_cpp() {
    let s = need_smol!("gguf_pre_tokenizers_match_llama_cpp");
    let golden = read_json(&fixture("gguf_pre_golden.json"));
    let texts: Vec<&str> = golden["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let pres = golden["pre"].as_object().unwrap();
    assert!(pres.len() >= 40, "{} pre-tokenizers", pres.len());
    let distinct: std::collections::HashSet<String> = pres.values().map(|c| c["ids"].to_string()).collect();
    assert!(distinct.len() >= 10, "the texts must tell the pre-tokenizers apart: {} distinct", distinct.len());
    let mut failures = Vec::new();
    for (name, case) in pres {
        let mut v = s.vocab.clone();
        v.pre = Some(name.clone());
        v.add_bos = None;
        // the fixture's extra tokens (multi-digit, contractions) and their merges, as the GGUF llama.cpp read
        let strs = |k: &str| golden[k].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string());
        v.tokens.extend(strs("extra_tokens"));
        v.merges.extend(strs("extra_merges"));
        v.token_types.resize(v.tokens.len(), 1);
        let tok = Tokenizer::from_gguf_vocab(v).unwrap_or_else(|e| panic!("pre {name:?}: {e}"));
        assert!(tok.warnings().is_empty(), "pre {name:?}: {:?}", tok.warnings());
        if tok.adds_bos() != case["add_bos"].as_bool().unwrap() {
            failures.push(format!("{name}: adds bos {} (llama.cpp {})", tok.adds_bos(), case["add_bos"]));
        }
        for (text, want) in texts.iter().zip(case["ids"].as_array().unwrap()) {
            let want = ids_of(want);
            let got = tok.encode(text, false).unwrap();
            if got != want {
                let at = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
                let start: String = text.chars().take(50).collect();
                failures.push(format!("{name} {start:?}: first difference at token {at} of {}", want.len()));
            }
        }
    }
    assert!(failures.is_empty(), "{} differences from llama.cpp:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn smollm2_skip_special_on_decode() {
    let s = need_smol!("smollm2_skip_special_on_decode");
    let ids = s.tok.encode("<|im_start|>user\nhi<|im_end|>", false).unwrap();
    assert_eq!(ids[0], 1);
    assert_eq!(*ids.last().unwrap(), 2);
    assert_eq!(s.tok.decode(&ids, true).unwrap(), "user\nhi");
}

#[test]
fn smollm2_chat_template() {
    let s = need_smol!("smollm2_chat_template");
    for case in s.golden["chat"].as_array().unwrap() {
        let messages: Vec<ChatMessage> = case["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| ChatMessage::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
            .collect();
        let gen = case["add_generation_prompt"].as_bool().unwrap();
        let rendered = chat(&s.tok, &messages, gen);
        assert_eq!(rendered, case["rendered"].as_str().unwrap());
        assert_eq!(s.tok.encode(&rendered, false).unwrap(), ids_of(&case["ids"]));
    }
    // The exact single-user-message prompt SmolLM2's template produces.
    assert_eq!(
        chat(&s.tok, &[ChatMessage::user("hi")], true),
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn smollm2_round_trip_every_play() {
    let s = need_smol!("smollm2_round_trip_every_play");
    let Some(texts) = texts_dir() else {
        return;
    };
    let dir = std::fs::read_dir(&texts).unwrap_or_else(|e| panic!("{}: {e}", texts.display()));
    let mut files: Vec<PathBuf> =
        dir.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "txt")).collect();
    files.sort();
    assert!(!files.is_empty());
    for p in &files {
        let text = std::fs::read_to_string(p).unwrap();
        let ids = s.tok.encode(&text, false).unwrap();
        let back = s.tok.decode(&ids, false).unwrap();
        assert!(back == text, "{}: decode(encode(x)) != x", p.display());
    }
    eprintln!("round-tripped {} files", files.len());
}

#[test]
fn smollm2_streaming_matches_full_decode() {
    let s = need_smol!("smollm2_streaming_matches_full_decode");
    let mut texts: Vec<String> =
        s.golden["strings"].as_array().unwrap().iter().map(|c| c["text"].as_str().unwrap().to_string()).collect();
    if let Some(d) = texts_dir() {
        texts.push(std::fs::read_to_string(d.join("hamlet_gut.txt")).unwrap());
    }
    for text in &texts {
        let ids = s.tok.encode(text, false).unwrap();
        for skip in [false, true] {
            let mut dec = s.tok.stream_decoder(skip);
            let mut out = String::new();
            for &id in &ids {
                let piece = dec.step(id).unwrap();
                assert!(!piece.contains('\u{FFFD}') || text.contains('\u{FFFD}'));
                out.push_str(&piece);
            }
            out.push_str(&dec.finish().unwrap());
            assert_eq!(out, s.tok.decode(&ids, skip).unwrap(), "stream of {:?}", &text[..text.len().min(40)]);
        }
    }
    // Byte-level tokens that split a character: nothing is emitted until it is complete.
    let ids = s.tok.encode("日本🦀", false).unwrap();
    let mut dec = s.tok.stream_decoder(false);
    let pieces: Vec<String> = ids.iter().map(|&i| dec.step(i).unwrap()).collect();
    assert!(pieces.iter().all(|p| !p.contains('\u{FFFD}')), "{pieces:?}");
    assert_eq!(pieces.concat(), "日本🦀");
    // Each token's own bytes (serve's `logprobs` `bytes`), also of the tokens that split a character,
    // join to the text's UTF-8.
    for text in ["日本🦀", "naïve café — “quoted”", texts.last().unwrap().as_str()] {
        let ids = s.tok.encode(text, false).unwrap();
        let bytes: Vec<u8> = ids.iter().flat_map(|&i| s.tok.token_bytes(i)).collect();
        assert_eq!(bytes, text.as_bytes(), "{:?}", &text[..text.len().min(40)]);
    }
    assert!(ids.iter().any(|&i| std::str::from_utf8(&s.tok.token_bytes(i)).is_err()), "some token splits a character");
}

#[test]
fn smollm2_tokenizer_json_round_trip() {
    let s = need_smol!("smollm2_tokenizer_json_round_trip");
    let dir = scratch_dir("smol-json");
    let path = dir.join("tokenizer.json");
    s.tok.save(&path).unwrap();
    let back = Tokenizer::from_file(&path).unwrap();
    assert_eq!(back.vocab_size(), s.tok.vocab_size());
    for case in s.golden["strings"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        assert_eq!(back.encode(text, true).unwrap(), ids_of(&case["ids"]), "{text:?}");
    }
    if let Some(case) = s.golden["plays"].as_array().unwrap().first() {
        if let Some(text) = play_slice(case) {
            assert_eq!(back.encode(&text, false).unwrap(), ids_of(&case["ids"]));
        }
    }
    // With tokenizer_config.json beside it, bos/eos/template survive too.
    s.tok.save_pretrained(&dir).unwrap();
    let back = Tokenizer::from_file(&path).unwrap();
    assert_eq!(back.bos_id(), s.tok.bos_id());
    assert_eq!(back.eos_id(), s.tok.eos_id());
    assert_eq!(back.adds_bos(), s.tok.adds_bos());
    assert_eq!(chat(&back, &[ChatMessage::user("hi")], true), chat(&s.tok, &[ChatMessage::user("hi")], true));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn smollm2_bad_vocabularies() {
    let s = need_smol!("smollm2_bad_vocabularies");
    let mut v = s.vocab.clone();
    v.token_types.truncate(100);
    let e = Tokenizer::from_gguf_vocab(v).unwrap_err();
    assert!(matches!(&e, Error::Tokenizer(m) if m.contains("100") && m.contains("49152")), "{e}");
    let mut v = s.vocab.clone();
    v.model = "llama".into();
    v.scores = vec![0.0; 7];
    assert!(matches!(Tokenizer::from_gguf_vocab(v), Err(Error::Tokenizer(m)) if m.contains("scores")));
    let mut v = s.vocab.clone();
    v.model = "rwkv".into();
    let e = Tokenizer::from_gguf_vocab(v).unwrap_err();
    assert!(e.to_string().contains("rwkv"), "{e}");
    let mut v = s.vocab.clone();
    v.merges[10] = "Ġ nonexistent-token".into();
    assert!(matches!(Tokenizer::from_gguf_vocab(v), Err(Error::Tokenizer(_))));
}

// ---------------------------------------------------------------------------------------------
// The tiny tokenizer.json fixture (trained with Python tokenizers; no models/ needed).

#[test]
fn tiny_tokenizer_json_matches_python() {
    let golden = read_json(&fixture("tiny_tokenizer_golden.json"));
    let tok = Tokenizer::from_file(&fixture("tiny_tokenizer.json")).unwrap();
    assert_eq!(tok.vocab_size() as u64, golden["vocab_size"].as_u64().unwrap());
    let sp = &golden["special_ids"];
    let sid = |n: &str| sp[n].as_u64().unwrap() as u32;
    // bos comes from the file's own template post-processor; eos from the special token names.
    assert_eq!(tok.bos_id(), Some(sid("<s>")));
    assert!(tok.adds_bos());
    assert_eq!(tok.eos_id(), Some(sid("</s>")));
    assert_eq!(tok.eos_ids(), vec![sid("</s>"), sid("<|im_end|>")]);
    for case in golden["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let with_sp = tok.encode(text, true).unwrap();
        assert_eq!(with_sp, ids_of(&case["ids_add_special"]), "{text:?}");
        assert_eq!(tok.encode(text, false).unwrap(), ids_of(&case["ids"]), "{text:?}");
        assert_eq!(tok.decode(&with_sp, false).unwrap(), case["decode"].as_str().unwrap());
        assert_eq!(tok.decode(&with_sp, true).unwrap(), case["decode_skip_special"].as_str().unwrap());
    }
    // Round trip through our own writer.
    let back = Tokenizer::from_json_str(&tok.to_json().unwrap()).unwrap();
    for case in golden["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        assert_eq!(back.encode(text, true).unwrap(), ids_of(&case["ids_add_special"]));
    }
}

#[test]
fn tiny_tokenizer_config_beside_json() {
    let dir = scratch_dir("tiny-config");
    std::fs::copy(fixture("tiny_tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    let tpl = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}\
               {{ '<|im_start|>system\\nBe brief.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] \
               + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}";
    let cfg = serde_json::json!({
        "bos_token": {"content": "<s>", "special": true},
        "eos_token": "<|im_end|>",
        "add_bos_token": false,
        "chat_template": tpl,
    });
    std::fs::write(dir.join("tokenizer_config.json"), cfg.to_string()).unwrap();
    let tok = Tokenizer::from_file(&dir.join("tokenizer.json")).unwrap();
    assert_eq!(tok.eos_id(), tok.token_to_id("<|im_end|>"));
    assert_eq!(tok.bos_id(), tok.token_to_id("<s>"));
    assert_eq!(tok.default_system_prompt(), Some("Be brief."));
    // Caller overrides.
    let tok = tok.with_eos(Some(0)).unwrap();
    assert_eq!(tok.eos_id(), Some(0));
    assert!(tok.with_eos(Some(1_000_000)).is_err());
    // A corrupt config beside the tokenizer is an error naming it.
    std::fs::write(dir.join("tokenizer_config.json"), "{not json").unwrap();
    let e = Tokenizer::from_file(&dir.join("tokenizer.json")).unwrap_err();
    assert!(matches!(&e, Error::Format { path, .. } if path.ends_with("tokenizer_config.json")), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn tokenizer_json_errors_name_the_file() {
    let missing = root().join("tests/fixtures/does-not-exist/tokenizer.json");
    let e = Tokenizer::from_file(&missing).unwrap_err();
    assert!(matches!(&e, Error::Io { path, .. } if path == &missing), "{e}");
    assert!(e.to_string().contains("does-not-exist"), "{e}");

    let dir = scratch_dir("corrupt");
    let bad = dir.join("tokenizer.json");
    for body in ["{\"model\": ", "{\"model\": {\"type\": \"Martian\"}}", "[]"] {
        std::fs::write(&bad, body).unwrap();
        let e = Tokenizer::from_file(&bad).unwrap_err();
        assert!(matches!(&e, Error::Tokenizer(m) if m.contains(&*bad.to_string_lossy())), "{e}");
    }
    assert!(matches!(Tokenizer::from_json_str("nope"), Err(Error::Tokenizer(_))));
    std::fs::remove_dir_all(&dir).ok();
}
