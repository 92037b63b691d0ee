//! The crate's layering, checked on the source text: every `crate::` path in src/ must point at the
//! same top-level module or one in a lower layer, and no two files may import each other through a
//! chain of `crate::` / `super::` paths. The layer table is the one README.md's layout section shows;
//! a new top-level module must be added to it.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules by layer, lowest first. A module may import from its own layer's module and
/// from lower layers only; modules that share a layer may not import each other.
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["util", "proto"],
    &["model"],
    &["quant"],
    &["engine_dir"],
    &["onnx", "trt"],
    &["backend"],
    &["generate"],
    &["eval"],
    &["bench", "build", "convert", "serve"],
    &["cli"],
];

/// Items lib.rs re-exports at the crate root, and the module they come from.
const ROOT_ITEMS: &[(&str, &str)] = &[("Error", "error"), ("Result", "error")];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Module path of a file: src/backend/cuda/mod.rs → [backend, cuda]; src/util.rs → [util].
fn module_path(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src_dir()).unwrap();
    let mut parts: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    if last != "mod.rs" && last != "lib.rs" && last != "main.rs" {
        parts.push(last.trim_end_matches(".rs").to_string());
    }
    parts
}

/// The file that defines the longest prefix of `path` (a module path from the crate root).
fn resolve(path: &[String]) -> Option<PathBuf> {
    let src = src_dir();
    for n in (1..=path.len()).rev() {
        let base = src.join(path[..n].join("/"));
        for cand in [base.with_extension("rs"), base.join("mod.rs")] {
            if cand.is_file() {
                return Some(cand);
            }
        }
    }
    None
}

/// Code of a line without its `//` comment (a `//` after `:` is a URL, not a comment).
fn code(line: &str) -> &str {
    let b = line.as_bytes();
    let mut i = 0;
    while let Some(j) = line[i..].find("//") {
        let at = i + j;
        if at == 0 || b[at - 1] != b':' {
            return &line[..at];
        }
        i = at + 2;
    }
    line
}

/// Identifiers joined by `::` from the start of `s`.
fn segments(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        let n = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
        if n == 0 {
            break;
        }
        out.push(rest[..n].to_string());
        rest = &rest[n..];
        match rest.strip_prefix("::") {
            Some(r) => rest = r,
            None => break,
        }
    }
    out
}

fn is_ident_char(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// Every `crate::` and `super::` path of a file, as absolute module paths, with its line number.
fn imports(file: &Path) -> Vec<(usize, Vec<String>)> {
    let text = std::fs::read_to_string(file).unwrap();
    let here = module_path(file);
    let mut out = Vec::new();
    // Indentation of the inline `mod x {` blocks we are in: `super::` there is relative to them.
    let mut inline: Vec<usize> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = code(raw);
        let indent = raw.len() - raw.trim_start().len();
        let t = line.trim();
        if let Some(&top) = inline.last() {
            if t == "}" && indent == top {
                inline.pop();
                continue;
            }
        }
        let words: Vec<&str> = t.split_whitespace().collect();
        let mod_at = words.iter().position(|w| *w == "mod");
        if let Some(i) = mod_at {
            if words.len() == i + 3 && words[i + 2] == "{" && words[..i].iter().all(|w| w.starts_with("pub")) {
                inline.push(indent);
                continue;
            }
        }
        for key in ["crate::", "super::"] {
            let mut from = 0;
            while let Some(j) = line[from..].find(key) {
                let at = from + j;
                from = at + key.len();
                if is_ident_char(line[..at].chars().next_back()) {
                    continue; // e.g. `trtforge::`, `mycrate::`
                }
                let mut segs = segments(&line[at..]);
                let abs = if key == "crate::" {
                    segs.remove(0);
                    segs
                } else {
                    // Each `super` leaves an inline module first, then the file's module.
                    let mut base = here.clone();
                    let mut depth = inline.len();
                    while segs.first().is_some_and(|s| s == "super") {
                        segs.remove(0);
                        if depth > 0 {
                            depth -= 1;
                        } else {
                            base.pop();
                        }
                    }
                    base.extend(segs);
                    base
                };
                out.push((n + 1, abs));
            }
        }
    }
    out
}

#[test]
fn each_layer_imports_only_from_below() {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let mut bad = Vec::new();
    let mut checked = 0;
    for f in &files {
        let here = module_path(f);
        let Some(top) = here.first() else { continue }; // lib.rs, main.rs
        let Some(from) = layer(top) else {
            bad.push(format!("{}: top-level module {top:?} is not in LAYERS (tests/layering.rs)", f.display()));
            continue;
        };
        for (line, path) in imports(f) {
            let Some(first) = path.first() else { continue };
            let target = ROOT_ITEMS.iter().find(|(i, _)| i == first).map(|(_, m)| *m).unwrap_or(first.as_str());
            checked += 1;
            if target == top {
                continue;
            }
            match layer(target) {
                None => bad.push(format!("{}:{line}: `{}` names an unknown module", f.display(), path.join("::"))),
                Some(to) if to >= from => bad.push(format!(
                    "{}:{line}: {top} (layer {from}) imports {} (layer {to}); a layer may only import from below",
                    f.display(),
                    path.join("::")
                )),
                Some(_) => {}
            }
        }
    }
    assert!(checked > 100, "only {checked} imports found: is the parser broken?");
    assert!(bad.is_empty(), "layering violations:\n{}", bad.join("\n"));
}

#[test]
fn no_import_cycles_between_files() {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for f in &files {
        let e = edges.entry(f.clone()).or_default();
        for (_, path) in imports(f) {
            if let Some(t) = resolve(&path) {
                if &t != f {
                    e.insert(t);
                }
            }
        }
    }
    // A cycle exists iff some file reaches itself; report each file's cycle once.
    let mut cycles: BTreeSet<Vec<PathBuf>> = BTreeSet::new();
    for start in edges.keys() {
        // Depth-first search for a path back to `start`.
        let mut stack: Vec<(PathBuf, Vec<PathBuf>)> = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((node, trail)) = stack.pop() {
            for next in edges.get(&node).into_iter().flatten() {
                if next == start {
                    let mut c = trail.clone();
                    let min = c.iter().min().cloned().unwrap();
                    let k = c.iter().position(|x| *x == min).unwrap();
                    c.rotate_left(k);
                    cycles.insert(c);
                } else if seen.insert(next.clone()) {
                    let mut t = trail.clone();
                    t.push(next.clone());
                    stack.push((next.clone(), t));
                }
            }
        }
    }
    let src = src_dir();
    let show: Vec<String> = cycles
        .iter()
        .map(|c| {
            let names: Vec<String> = c.iter().map(|p| p.strip_prefix(&src).unwrap().display().to_string()).collect();
            format!("{} -> {}", names.join(" -> "), names[0])
        })
        .collect();
    assert!(show.is_empty(), "import cycles:\n{}", show.join("\n"));
}

#[test]
fn the_parser_sees_what_it_should() {
    // A self-check, so the tests above cannot pass by parsing nothing.
    let f = src_dir().join("backend/cpu.rs");
    let paths: Vec<String> = imports(&f).into_iter().map(|(_, p)| p.join("::")).collect();
    assert!(paths.iter().any(|p| p == "backend"), "{paths:?}"); // `use super::{check_chunks, ..}`
    assert!(paths.iter().any(|p| p.starts_with("model::graph")), "{paths:?}");
    assert_eq!(resolve(&["backend".into(), "Backend".into()]), Some(src_dir().join("backend/mod.rs")));
    assert_eq!(code("let u = \"http://x\"; // note"), "let u = \"http://x\"; ");
}

/// Lines of `file` (code only, comments stripped) with `word` as a whole token.
fn lines_with_word(file: &Path, word: &str) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let c = code(line);
        let hit = c.match_indices(word).any(|(at, _)| {
            !is_ident_char(c[..at].chars().next_back()) && !is_ident_char(c[at + word.len()..].chars().next())
        });
        if hit {
            out.push((i + 1, line.trim().to_string()));
        }
    }
    out
}

/// The CUDA engine's `unsafe` lives in gpu.rs (the safe layer over cudarc) and launch.rs (typed,
/// size-checked kernel launches). The forward pass (cuda/mod.rs) and the rest of cuda/ are safe
/// code that never handles a raw device address: no `unsafe`, no `.ptr()`, no `c_void`.
#[test]
fn cuda_unsafe_only_in_gpu_and_launch() {
    let dir = src_dir().join("backend/cuda");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    assert!(files.iter().any(|f| f.ends_with("backend/cuda/mod.rs")), "{files:?}");
    // Self-check: the scanner finds the unsafe blocks that are meant to be there.
    assert!(!lines_with_word(&dir.join("launch.rs"), "unsafe").is_empty());
    assert!(lines_with_word(&dir.join("launch.rs"), "unsafe_x").is_empty());
    let mut bad = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy();
        if name == "gpu.rs" || name == "launch.rs" {
            continue;
        }
        for word in ["unsafe", "ptr", "c_void"] {
            for (n, line) in lines_with_word(f, word) {
                bad.push(format!("{}:{n}: {line}", f.strip_prefix(src_dir()).unwrap().display()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "raw device access outside cuda/gpu.rs and cuda/launch.rs (add a typed wrapper to launch.rs):\n{}",
        bad.join("\n")
    );
}
