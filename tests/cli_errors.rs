//! Bad input through the real binary: clear message, non-zero exit, no panic, nothing half-written.
mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Output};

fn trtforge(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trtforge")).args(args).current_dir(cwd).output().unwrap()
}

/// Runs, expects failure, returns stderr; asserts it is an error message and not a panic.
fn fails(args: &[&str], cwd: &Path) -> String {
    let out = trtforge(args, cwd);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{args:?} should fail; stderr: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    err
}

fn tiny() -> String {
    fixture("tiny_llama").to_str().unwrap().into()
}

fn write_cfg(dir: &Path, body: &str) -> String {
    let p = dir.join("c.yaml");
    std::fs::write(&p, body).unwrap();
    p.to_str().unwrap().into()
}

fn cfg(model: &str, extra: &str) -> String {
    format!(
        "name: e\nmodel:\n  path: {model}\nbuild:\n  max_batch_size: 1\n  max_input_len: 16\n  max_seq_len: 32\n  opt_batch_size: 1\n{extra}"
    )
}

/// Nothing but the config file is left in the directory.
fn assert_no_leftovers(dir: &Path) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "c.yaml" && n != "in")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn convert_bad_configs() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let c = write_cfg(d, &cfg("does/not/exist.gguf", ""));
    let e = fails(&["convert", "--config", &c], d);
    assert!(e.contains("does/not/exist.gguf"), "{e}");
    assert_no_leftovers(d);

    let c = write_cfg(d, &cfg(&tiny(), "quantization:\n  precision: int3\n"));
    let e = fails(&["convert", "--config", &c], d);
    assert!(e.contains("int3") && e.contains("c.yaml"), "{e}");

    let c = write_cfg(d, &cfg(&tiny(), "colour: red\n"));
    let e = fails(&["convert", "--config", &c], d);
    assert!(e.contains("colour") && e.contains("c.yaml"), "{e}");

    let c = write_cfg(
        d,
        &cfg(&tiny(), "")
            .replace("max_seq_len: 32", "max_seq_len: 100000")
            .replace("max_input_len: 16", "max_input_len: 64"),
    );
    let e = fails(&["convert", "--config", &c], d);
    assert!(e.contains("max_seq_len 100000 exceeds the model's context of 512"), "{e}");
    assert_no_leftovers(d);

    // An empty target list is refused at convert, not one step later at build.
    let c = write_cfg(d, &cfg(&tiny(), "").replace("  opt_batch_size: 1\n", "  opt_batch_size: 1\n  target: []\n"));
    let e = fails(&["convert", "--config", &c], d);
    assert!(e.contains("build.target is empty"), "{e}");
    assert_no_leftovers(d);
}

#[test]
fn convert_refuses_existing_output_without_force() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let c = write_cfg(d, &cfg(&tiny(), "output_dir: out\n"));
    assert!(trtforge(&["convert", "--config", &c], d).status.success());
    let before = std::fs::read(d.join("out/trtforge.json")).unwrap();
    let e = fails(&["convert", "--config", &c], d);
    assert!(e.contains("already exists") && e.contains("--force"), "{e}");
    assert_eq!(std::fs::read(d.join("out/trtforge.json")).unwrap(), before);
    assert!(trtforge(&["convert", "--config", &c, "--force"], d).status.success());
    let names: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "only c.yaml and out/ remain: {names:?}");
}

#[test]
fn tokenizer_warnings_are_shown() {
    // A generation_config.json eos id outside the vocabulary is ignored, and the user is told so.
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("m");
    std::fs::create_dir(&m).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture("tiny_llama").join(f), m.join(f)).unwrap();
    }
    std::fs::write(m.join("generation_config.json"), r#"{"eos_token_id": 70000}"#).unwrap();
    let out = trtforge(&["generate", "--model", "m", "--prompt", "hi", "--max-new-tokens", "2"], t.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("warning: tokenizer:") && err.contains("eos_token_id 70000 is out of range"), "{err}");
}

#[test]
fn engine_dir_whose_manifest_and_onnx_disagree_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let c = write_cfg(d, &cfg(&tiny(), "output_dir: out\n"));
    assert!(trtforge(&["convert", "--config", &c], d).status.success());
    let run = ["generate", "--engine-dir", "out", "--backend", "ort", "--prompt-ids", "1,2,3", "--max-new-tokens", "2"];
    assert!(trtforge(&run, d).status.success());
    // An edited layer count (it failed on a missing ONNX input name), and a manifest listing other inputs.
    let m = std::fs::read_to_string(d.join("out/trtforge.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&m).unwrap();
    let layers = v["model_config"]["num_hidden_layers"].as_u64().unwrap();
    let mut more = v.clone();
    more["model_config"]["num_hidden_layers"] = (layers + 3).into();
    std::fs::write(d.join("out/trtforge.json"), more.to_string()).unwrap();
    for backend in ["ort", "cpu"] {
        let e = fails(&["generate", "--engine-dir", "out", "--backend", backend, "--prompt-ids", "1"], d);
        assert!(
            e.contains(&format!("model_config says {} layers", layers + 3)) && e.contains("past_key_values"),
            "{e}"
        );
    }
    let mut renamed = v.clone();
    renamed["onnx"]["inputs"][0]["name"] = "tokens".into();
    std::fs::write(d.join("out/trtforge.json"), renamed.to_string()).unwrap();
    let e = fails(&run, d);
    assert!(e.contains("differ from the manifest's") && e.contains("\"tokens\""), "{e}");
}

#[test]
fn convert_write_errors_leave_nothing_behind() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    // The output's parent is a file: creating the directory fails.
    std::fs::write(d.join("in"), b"x").unwrap();
    let c = write_cfg(d, &cfg(&tiny(), "output_dir: in/out\n"));
    let e = fails(&["convert", "--config", &c], d);
    // The error names the path that could not be created and the OS's reason, once (said before
    // the model is loaded).
    assert!(e.contains("error: in: Not a directory") && e.matches("Not a directory").count() == 1, "{e}");

    // Disk full, simulated by a file-size limit (SIGXFSZ ignored so write() returns EFBIG).
    let c = write_cfg(d, &cfg(&tiny(), "output_dir: big\n"));
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("trap '' XFSZ; ulimit -f 64; exec '{}' convert --config '{}'", env!("CARGO_BIN_EXE_trtforge"), c))
        .current_dir(d)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("error:"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_no_leftovers(d);
}

#[test]
fn bad_model_inputs() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let e = fails(&["generate", "--model", "missing.gguf", "--prompt", "hi"], d);
    assert!(e.contains("missing.gguf"), "{e}");
    std::fs::write(d.join("junk.gguf"), b"NOTGGUF0000000000000000000000").unwrap();
    let e = fails(&["info", "--model", "junk.gguf"], d);
    assert!(e.contains("junk.gguf") && e.contains("magic"), "{e}");
    let e = fails(&["info", "--model", "/dev/null"], d);
    assert!(e.contains("/dev/null") && e.contains("not a regular file"), "{e}");
    let e = fails(&["generate", "--model", &tiny(), "--prompt", ""], d);
    assert!(e.contains("empty"), "{e}");
    let e = fails(&["generate", "--model", &tiny(), "--prompt", "hi", "--max-new-tokens", "100000"], d);
    assert!(e.contains("exceeds"), "{e}");
    let e = fails(&["generate", "--model", "preset:nope", "--prompt-ids", "1"], d);
    assert!(e.contains("unknown preset"), "{e}");
    let e = fails(&["eval", "--model", &tiny(), "--text", "nofile.txt"], d);
    assert!(e.contains("nofile.txt"), "{e}");
    std::fs::write(d.join("short.txt"), "tiny text").unwrap();
    let e = fails(&["eval", "--model", &tiny(), "--text", "short.txt", "--ctx", "64"], d);
    assert!(e.contains("fewer than one window"), "{e}");
    let e = fails(&["eval", "--model", &tiny(), "--text", "short.txt", "--ctx", "4096"], d);
    assert!(e.contains("context"), "{e}");
    let e = fails(&["eval", "--model", "preset:tiny", "--text", "short.txt", "--ctx", "64"], d);
    assert!(e.contains("no tokenizer") && e.contains("tokenizes --text") && !e.contains("--prompt-ids"), "{e}");
    let e = fails(&["generate", "--model", "preset:tiny", "--prompt", "hi"], d);
    assert!(e.contains("no tokenizer") && e.contains("--prompt-ids"), "{e}");
    let e = fails(&["generate", "--engine-dir", "nodir", "--backend", "ort", "--prompt", "x"], d);
    assert!(e.contains("nodir"), "{e}");
    // A folder without config.json: not an HF checkpoint; the GGUF files in it are named as what to give instead.
    std::fs::create_dir(d.join("m")).unwrap();
    let e = fails(&["info", "--model", "m"], d);
    assert!(e.contains("without config.json") && e.contains("preset:NAME"), "{e}");
    std::fs::write(d.join("m").join("a.Q4_0.gguf"), b"x").unwrap();
    let e = fails(&["generate", "--model", "m", "--prompt", "hi"], d);
    assert!(e.contains("--model m/a.Q4_0.gguf"), "{e}");
    std::fs::write(d.join("m").join("b.gguf"), b"x").unwrap();
    let e = fails(&["serve", "--model", "m", "--port", "0"], d);
    assert!(e.contains("m/a.Q4_0.gguf, m/b.gguf"), "{e}");
}

#[test]
fn generate_and_info_work_on_the_tiny_checkpoint() {
    let t = tempfile::tempdir().unwrap();
    let out = trtforge(
        &["generate", "--model", &tiny(), "--prompt", "Shall I", "--greedy", "--max-new-tokens", "8"],
        t.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!out.stdout.is_empty());
    let out = trtforge(&["info", "--model", &tiny(), "--json"], t.path());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["config"]["num_hidden_layers"], 2);
    assert_eq!(v["config"]["vocab_size"], 384);
}

#[test]
fn stop_strings_end_generation() {
    let t = tempfile::tempdir().unwrap();
    let args =
        ["generate", "--model", &tiny(), "--prompt", "Shall I compare thee", "--greedy", "--max-new-tokens", "24"];
    let full = trtforge(&args, t.path());
    assert!(full.status.success());
    let text = String::from_utf8_lossy(&full.stdout).trim_end_matches('\n').to_string();
    assert!(text.chars().count() > 12, "{text:?}");
    // Stop at a piece of the middle of the greedy text: the output ends right after it.
    let stop: String = text.chars().skip(6).take(4).collect();
    let mut with_stop = args.to_vec();
    with_stop.extend(["--stop", &stop]);
    let out = trtforge(&with_stop, t.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains("StopString"), "{err}");
    let short = String::from_utf8_lossy(&out.stdout).trim_end_matches('\n').to_string();
    assert!(short.contains(&stop) && short.len() < text.len(), "{short:?} vs {text:?}");
    assert!(text.starts_with(&short), "{short:?} is a prefix of {text:?}");
}

/// An engine directory given where a model goes: the error names --engine-dir, for every command that loads a model.
#[test]
fn engine_dir_given_as_a_model_says_engine_dir() {
    let d = tempfile::tempdir().unwrap();
    let ed = d.path().join("eng");
    std::fs::create_dir(&ed).unwrap();
    std::fs::write(ed.join(trtforge::engine_dir::manifest::MANIFEST_FILE), "{}").unwrap();
    let ed = ed.to_str().unwrap();
    std::fs::write(d.path().join("text.txt"), "Some text to score.\n").unwrap();
    for args in [
        vec!["generate", "--model", ed, "--prompt", "hi"],
        vec!["eval", "--model", ed, "--text", "text.txt"],
        vec!["serve", "--model", ed, "--port", "0"],
    ] {
        let err = fails(&args, d.path());
        assert!(err.contains("engine directory") && err.contains(&format!("--engine-dir {ed}")), "{args:?}: {err}");
    }
}

/// `generate --grammar / --grammar-file / --json-schema / --regex` on SmolLM2 (its tokenizer and chat template): each
/// text is checked by an implementation of its own (the `regex` crate, serde_json, a bracket count), greedy and
/// sampled; bad constraints fail before the model loads, with the flag named.
#[test]
fn generate_under_a_grammar_a_schema_or_a_pattern() {
    let Some(model) = model_file(SMOLLM2_GGUF) else { return };
    let model = model.to_str().unwrap().to_string();
    let t = tempfile::tempdir().unwrap();
    let gen = |extra: &[&str]| {
        let mut args = vec!["generate", "--model", &model, "--max-new-tokens", "40", "--chat"];
        args.extend_from_slice(extra);
        let out = trtforge(&args, t.path());
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{extra:?}: {err}");
        (String::from_utf8_lossy(&out.stdout).trim_end_matches('\n').to_string(), err)
    };
    // A grammar of alternatives, greedy and sampled: a whole sentence, then the end token.
    let answer = regex::Regex::new(r"^The answer is (yes|no)\.$").unwrap();
    for extra in [&["--greedy"][..], &["--seed", "5", "--temperature", "1.2"]] {
        let mut args =
            vec!["--prompt", "Is the sky blue?", "--grammar", r#"root ::= "The answer is " ("yes" | "no") "." "#];
        args.extend_from_slice(extra);
        let (text, err) = gen(&args);
        assert!(answer.is_match(&text), "{text:?}");
        assert!(err.contains("(Eos)"), "{err}");
    }
    // A recursive grammar from a file: nested brackets (no regular expression has this language), checked by depth.
    let g = t.path().join("brackets.gbnf");
    std::fs::write(&g, "# balanced brackets\nroot ::= \"(\" inner \")\"\ninner ::= (\"(\" inner \")\" | [a-z ])*\n")
        .unwrap();
    let (mut ended, mut cut) = (0, 0);
    for seed in ["1", "2", "3"] {
        let prompt = "Write a Lisp expression, like (add (mul x y) z).";
        let (text, err) = gen(&["--prompt", prompt, "--grammar-file", g.to_str().unwrap(), "--seed", seed]);
        let mut depth = 0i32;
        for (i, c) in text.chars().enumerate() {
            depth += match c {
                '(' => 1,
                ')' => -1,
                'a'..='z' | ' ' => 0,
                _ => panic!("{c:?} in {text:?}"),
            };
            assert!(depth > 0 || i + 1 == text.chars().count(), "{text:?} closes its root early");
        }
        assert!(text.starts_with('('), "{text:?}");
        if err.contains("(Eos)") {
            assert_eq!(depth, 0, "{text:?}");
            ended += 1;
        } else {
            assert!(err.contains("MaxTokens") && depth > 0, "{text:?}: {err}");
            cut += 1;
        }
    }
    eprintln!("brackets: {ended} whole, {cut} cut by --max-new-tokens");
    // A JSON Schema: serde_json reads an object of exactly the declared keys.
    let schema = r#"{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"]}"#;
    let (text, _) = gen(&["--prompt", "Give me a person as JSON.", "--greedy", "--json-schema", schema]);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    let o = v.as_object().unwrap();
    assert!(o["name"].is_string() && o["age"].is_i64() && o.len() == 2, "{text}");
    // A pattern.
    let (text, _) = gen(&["--prompt", "A phone number?", "--seed", "9", "--regex", "[0-9]{3}-[0-9]{4}"]);
    assert!(regex::Regex::new(r"^[0-9]{3}-[0-9]{4}$").unwrap().is_match(&text), "{text:?}");
    // Bad constraints: an error naming the flag, before the model is read (none is given a file here).
    for (args, want) in [
        (
            &["--grammar", "root ::= root \"a\" | \"b\""][..],
            "--grammar cannot be enforced: rule 'root' is left-recursive",
        ),
        (&["--grammar", "start: \"a\""], "--grammar cannot be enforced: the grammar has no rule"),
        (&["--grammar-file", "/nonexistent/g.gbnf"], "--grammar-file: reading /nonexistent/g.gbnf"),
        (&["--json-schema", "{"], "--json-schema is not JSON"),
        (&["--json-schema", r#"{"type":"string","pattern":"a"}"#], "--json-schema cannot be enforced"),
        (&["--regex", "(?=a)"], "--regex cannot be enforced"),
        (&["--regex", "a", "--grammar", "root ::= \"a\""], "cannot be used with"),
    ] {
        let mut a = vec!["generate", "--model", "/nonexistent/model.gguf", "--prompt", "hi"];
        a.extend_from_slice(args);
        let e = fails(&a, t.path());
        assert!(e.contains(want), "{args:?}: {e}");
    }
    let e = fails(&["generate", "--model", "preset:smollm2-135m", "--prompt-ids", "1,2", "--regex", "a+"], t.path());
    assert!(e.contains("no tokenizer, which --regex needs"), "{e}");
}
