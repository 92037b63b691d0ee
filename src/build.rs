//! `trtforge build`, the stage above the `trt` FFI library: an engine directory's ONNX → `model.engine`, with optimization profiles from
//! the build settings, ahead-of-time targets, a timing cache reused across builds, and a
//! `tensorrt` section added to the manifest. Everything that can be checked before the (slow)
//! build is checked first.
use crate::engine_dir::config::{AttentionForm, BuildSection, TensorRtSection};
use crate::engine_dir::manifest::{
    CacheOutcome, FileInfo, IoInfo, Manifest, ProfileInfo, ShapeRange, TrtManifest, ENGINE_FILE, MANIFEST_FILE,
    TRT_MANIFEST_KEY,
};
use crate::quant::WeightFormat;
use crate::trt::safe::{Builder, NetworkDefinition, NetworkTensor};
use crate::trt::sys::Flavour;
use crate::trt::{dtype_name, parse_target, TrtError, TrtLibrary, RTX_TARGETS};
use crate::util::{sha256_bytes, write_atomic};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Head-room on top of the weights when estimating the disk an engine needs.
const DISK_SLACK_BYTES: u64 = 64 << 20;

/// ONNX tensor element types that only some GPUs run (onnx.proto `DataType`).
const ONNX_FLOAT8: &[(i32, &str)] =
    &[(17, "FLOAT8E4M3FN"), (18, "FLOAT8E4M3FNUZ"), (19, "FLOAT8E5M2"), (20, "FLOAT8E5M2FNUZ")];
const ONNX_INT4: &[(i32, &str)] = &[(21, "UINT4"), (22, "INT4")];

/// What `build` did.
#[derive(Debug, Clone)]
pub struct BuildReport {
    pub engine: PathBuf,
    pub section: TrtManifest,
}

/// Options beyond the config: where the settings came from and overrides from the command line.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// Build settings (shapes, targets); None: those recorded in the manifest.
    pub build: Option<BuildSection>,
    pub tensorrt: TensorRtSection,
    /// Print builder phases.
    pub progress: bool,
}

/// The cache directory shared by the engines beside `engine_dir`: `<engines>/.trt_cache/`.
pub fn cache_dir(engine_dir: &Path) -> PathBuf {
    let parent = engine_dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    parent.join(".trt_cache")
}

/// The timing-cache file for a library and target set.
pub fn timing_cache_path(engine_dir: &Path, lib: &TrtLibrary, targets: &[u32]) -> PathBuf {
    let t: Vec<String> = targets.iter().map(|t| format!("sm{t}")).collect();
    let key = format!(
        "{}-{}-{}",
        lib.flavour.as_str(),
        lib.version_string(),
        if t.is_empty() { "native".into() } else { t.join("_") }
    );
    cache_dir(engine_dir).join(format!("{key}.timing"))
}

/// Checks that need no TensorRT: shapes against the model, targets, precision vs targets, disk.
/// `flavour`: the library, once loaded (TensorRT-RTX checks the target list); None before.
pub fn precheck(
    dir: &Path,
    m: &Manifest,
    b: &BuildSection,
    targets: &[u32],
    flavour: Option<Flavour>,
) -> Result<(), TrtError> {
    let bad = |s: String| Err(TrtError::Invalid(s));
    if b.max_batch_size == 0 || b.opt_batch_size == 0 || b.opt_batch_size > b.max_batch_size {
        return bad(format!(
            "build: need 1 <= opt_batch_size ({}) <= max_batch_size ({})",
            b.opt_batch_size, b.max_batch_size
        ));
    }
    if b.max_input_len == 0 || b.max_input_len > b.max_seq_len {
        return bad(format!("build: need 1 <= max_input_len ({}) <= max_seq_len ({})", b.max_input_len, b.max_seq_len));
    }
    if b.max_seq_len > m.build.max_seq_len {
        return bad(format!(
            "build.max_seq_len {} exceeds the {} positions {} was converted for (its RoPE tables and KV cache); \
re-run `trtforge convert` with a larger build.max_seq_len",
            b.max_seq_len,
            m.build.max_seq_len,
            dir.display()
        ));
    }
    if b.max_seq_len > m.model_config.max_position_embeddings {
        return bad(format!(
            "build.max_seq_len {} exceeds the model's context of {} tokens",
            b.max_seq_len, m.model_config.max_position_embeddings
        ));
    }
    if flavour == Some(Flavour::Rtx) {
        if targets.is_empty() {
            return bad("build.target is empty: TensorRT-RTX builds ahead of time for listed GPUs, e.g. [sm89]".into());
        }
        for t in targets {
            if !RTX_TARGETS.contains(t) {
                let list: Vec<String> = RTX_TARGETS.iter().map(|t| format!("sm{t}")).collect();
                return bad(format!(
                    "build.target sm{t} is not a TensorRT-RTX 1.7 target; choose from {}",
                    list.join(", ")
                ));
            }
        }
    }
    // Precision vs targets: what the graph holds decides, not a name.
    let onnx = dir.join(&m.onnx.file);
    let (fp8, int4) = graph_low_precision(&onnx)?;
    let low = |need: u32, what: &str, why: &str| -> Result<(), TrtError> {
        if let Some(t) = targets.iter().find(|&&t| t < need) {
            return Err(TrtError::Invalid(format!(
                "{} holds {what} tensors ({why}), which need sm{need} or newer, but build.target includes sm{t}; \
remove sm{t} from build.target or convert with another precision",
                onnx.display()
            )));
        }
        Ok(())
    };
    if let Some(t) = fp8 {
        low(89, t, "FP8")?;
    }
    if let Some(t) = int4 {
        low(80, t, &format!("{} weights", m.precision_name()))?;
    }
    if matches!(m.precision, WeightFormat::I4 { .. }) && targets.iter().any(|&t| t < 80) {
        return bad(format!("precision {} needs sm80 or newer", m.precision_name()));
    }
    // Disk: the engine holds the weights once more, plus kernels.
    let weights: u64 = m.files.iter().filter(|f| f.name.starts_with("model.onnx")).map(|f| f.bytes).sum();
    let need = weights + weights / 4 + DISK_SLACK_BYTES;
    if let Some(free) = free_bytes(dir) {
        if free < need {
            return bad(format!(
                "{} has {:.1} MB free; building this engine needs about {:.1} MB",
                dir.display(),
                free as f64 / 1e6,
                need as f64 / 1e6
            ));
        }
    }
    Ok(())
}

/// Free bytes on the filesystem holding `p` (None if it cannot be asked).
pub fn free_bytes(p: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(p.as_os_str().to_string_lossy().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: c is NUL-terminated; st is a properly sized out-parameter.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled st.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)] // u32 on some targets
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Scans an ONNX file's initializers, value types and Cast targets for FP8 and INT4.
fn graph_low_precision(path: &Path) -> Result<(Option<&'static str>, Option<&'static str>), TrtError> {
    use crate::proto as pb;
    use prost::Message;
    let bytes = std::fs::read(path).map_err(|e| TrtError::Invalid(format!("{}: {e}", path.display())))?;
    let model = pb::ModelProto::decode(bytes.as_slice())
        .map_err(|e| TrtError::Invalid(format!("{}: not an ONNX model: {e}", path.display())))?;
    let mut types: Vec<i32> = Vec::new();
    if let Some(g) = &model.graph {
        types.extend(g.initializer.iter().filter_map(|t| t.data_type));
        for v in g.input.iter().chain(&g.output).chain(&g.value_info) {
            if let Some(pb::type_proto::Value::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
                types.extend(t.elem_type);
            }
        }
        for n in &g.node {
            for a in &n.attribute {
                if a.name.as_deref() == Some("to") {
                    types.extend(a.i.map(|x| x as i32));
                }
                if let Some(t) = &a.t {
                    types.extend(t.data_type);
                }
            }
        }
    }
    let find = |set: &[(i32, &'static str)]| set.iter().find(|(v, _)| types.contains(v)).map(|(_, n)| *n);
    Ok((find(ONNX_FLOAT8), find(ONNX_INT4)))
}

/// The optimization profiles for a model and build settings: a prefill-shaped one (many new
/// tokens, little past) and a decode-shaped one (one new token, long past).
pub fn profiles(m: &Manifest, b: &BuildSection, inputs: &[String]) -> Result<Vec<ProfileInfo>, TrtError> {
    let c = &m.model_config;
    let (mb, ob) = (b.max_batch_size as i64, b.opt_batch_size as i64);
    let (mi, ms) = (b.max_input_len as i64, b.max_seq_len as i64);
    let (kvh, hd) = (c.num_key_value_heads as i64, c.head_dim as i64);
    // (seq min/opt/max, past min/opt/max). Each profile's maxima must be consistent:
    // past + seq <= max_seq_len is the attention mask's (and the present cache's) length.
    let shapes = [
        ("prefill", [1, mi.clamp(1, 128), mi], [0, 0, ms - mi]),
        ("decode", [1, 1, 1], [0, (ms / 2).min(ms - 1), ms - 1]),
    ];
    let cache_len = match m.onnx.attention {
        AttentionForm::Portable => None,
        AttentionForm::Tensorrt => Some(m.build.max_seq_len as i64),
    };
    let mut out = Vec::new();
    for (name, seq, past) in shapes {
        let mut map = BTreeMap::new();
        for n in inputs {
            let r = |f: &dyn Fn(usize) -> Vec<i64>| ShapeRange { min: f(0), opt: f(1), max: f(2) };
            let bsz = |i: usize| [1, ob, mb][i];
            let range = match n.as_str() {
                "input_ids" | "position_ids" => r(&|i| vec![bsz(i), seq[i]]),
                // Portable: the mask covers past + new tokens.
                "attention_mask" => r(&|i| vec![bsz(i), (past[i] + seq[i]).min(ms)]),
                // TensorRT form: per-sequence lengths.
                "past_seq_lens" => r(&|i| vec![bsz(i)]),
                k if k.starts_with("past_key_values.") => match cache_len {
                    None => r(&|i| vec![bsz(i), kvh, past[i], hd]),
                    Some(cap) => r(&|i| vec![bsz(i), kvh, cap, hd]),
                },
                other => {
                    return Err(TrtError::Invalid(format!(
                        "the ONNX model has an input {other:?} that trtforge does not know how to shape"
                    )))
                }
            };
            map.insert(n.clone(), range);
        }
        out.push(ProfileInfo { name: name.into(), inputs: map });
    }
    Ok(out)
}

/// Builds `model.engine` in an engine directory.
pub fn build(dir: &Path, req: &BuildRequest, log: &mut dyn FnMut(&str)) -> Result<BuildReport, crate::Error> {
    let t0 = Instant::now();
    let mut man = Manifest::load(dir)?;
    // A missing model.engine is what build makes; the ONNX it reads must be what convert wrote.
    man.check_files(dir)?;
    let onnx_files = man.verify_hashes(dir, |n| n.starts_with("model.onnx"))?;
    let b = req.build.clone().unwrap_or_else(|| man.build.clone());
    let targets: Vec<u32> = b.target.iter().map(|t| parse_target(t)).collect::<Result<_, _>>()?;
    if let Some(l) = &req.tensorrt.log_level {
        crate::trt::callbacks::set_log_level(l).map_err(TrtError::Invalid)?;
    }
    if let Some(l) = req.tensorrt.optimization_level {
        if l > 5 {
            return Err(TrtError::Invalid(format!("tensorrt.optimization_level {l} must be 0..=5")).into());
        }
    }
    // Shapes, targets and precision before the library, so these errors need no TensorRT.
    precheck(dir, &man, &b, &targets, None)?;
    // model.engine and the manifest are written into `dir` after the (slow) compilation: prove now
    // that they can be. The compilation cache beside it is optional: without it, a warning.
    crate::util::atomic::check_writable(dir)?;
    let cache_ok = match crate::util::atomic::check_writable(&cache_dir(dir)) {
        Ok(()) => true,
        Err(e) => {
            log(&format!("warning: the compilation cache cannot be written ({e}); this engine will not be cached"));
            false
        }
    };
    let lib = crate::trt::find_and_load(req.tensorrt.library.as_deref())?;
    // TensorRT (not RTX) builds for the GPU present: the target list does not apply.
    let targets = if lib.flavour == Flavour::Rtx { targets } else { Vec::new() };
    precheck(dir, &man, &b, &targets, Some(lib.flavour))?;
    log(&format!("{} from {}", lib.describe(), lib.path.display()));

    let onnx = dir.join(&man.onnx.file);
    let mut builder = Builder::new(lib)?;
    let mut network = builder.create_network()?;
    log(&format!("parsing {}", onnx.display()));
    // The parser owns the weights the network points at: it lives until the engine is built.
    let mut parser = crate::trt::OnnxParser::new(&mut network)?;
    parser.parse_file(&mut network, &onnx)?;
    let (ins, outs, layers) = network.io();
    check_io(&man, &network)?;
    let in_names: Vec<String> = ins.iter().map(|t| t.name.clone()).collect();
    let profs = profiles(&man, &b, &in_names)?;

    let mut config = builder.create_config()?;
    if req.progress {
        config.enable_progress();
    }
    if !targets.is_empty() {
        config.set_compute_capabilities(&targets.iter().map(|&t| t as i32).collect::<Vec<_>>())?;
    }
    if let Some(l) = req.tensorrt.optimization_level {
        config.set_optimization_level(l as i32);
    }
    let workspace = req.tensorrt.workspace_mb.map(|mb| mb << 20);
    if let Some(w) = workspace {
        config.set_workspace_limit(w as usize);
    }
    for p in &profs {
        let mut prof = builder.create_profile()?;
        for (name, r) in &p.inputs {
            prof.set_shapes(name, &r.min, &r.opt, &r.max)?;
        }
        if !prof.is_valid() {
            return Err(
                TrtError::Invalid(format!("optimization profile {:?} is not valid: {:?}", p.name, p.inputs)).into()
            );
        }
        config.add_profile(&prof)?;
    }
    let use_cache = req.tensorrt.timing_cache != Some(false);
    // TensorRT-RTX: timing-cache calls are accepted but do nothing, so only TensorRT uses one.
    let cache_file = (use_cache && lib.flavour == Flavour::TensorRt).then(|| timing_cache_path(dir, lib, &targets));
    let old_cache = match &cache_file {
        Some(p) => std::fs::read(p).ok(),
        None => None,
    };
    if cache_file.is_some() {
        config.use_timing_cache(old_cache.as_deref().unwrap_or(&[]))?;
    }
    let tlist: Vec<String> = targets.iter().map(|t| format!("sm{t}")).collect();
    log(&format!(
        "building ({} layers, {} profiles{}, timing cache {})",
        layers,
        profs.len(),
        if tlist.is_empty() { String::new() } else { format!(", targets {}", tlist.join(" ")) },
        match (&cache_file, &old_cache) {
            (None, _) => "off".to_string(),
            (Some(p), Some(_)) => format!("from {}", p.display()),
            (Some(p), None) => format!("new at {}", p.display()),
        }
    ));
    let key = build_key(&onnx_files, lib, &targets, &req.tensorrt, workspace, &profs);
    let cached_engine = cache_dir(dir).join(format!("{key}.engine"));
    let tb = Instant::now();
    // Each cached engine has its SHA-256 beside it (`<key>.engine.sha256`, written after the engine): an
    // entry that does not match it (damaged, truncated, or from a trtforge that wrote no hash) is rebuilt,
    // never installed as model.engine.
    let cached_sum = cache_dir(dir).join(format!("{key}.engine.sha256"));
    let cached = match (std::fs::read(&cached_engine), std::fs::read_to_string(&cached_sum)) {
        (Ok(b), Ok(sum)) if use_cache && !b.is_empty() && sha256_bytes(&b) == sum.trim() => Some(b),
        (Ok(_), _) if use_cache => {
            log(&format!(
                "compilation cache entry {} does not match its SHA-256 ({}): rebuilding",
                cached_engine.display(),
                cached_sum.display()
            ));
            None
        }
        _ => None,
    };
    let (owned, build_cache) = match cached {
        Some(b) => {
            log(&format!("compilation cache hit: {}", cached_engine.display()));
            (b, CacheOutcome::Hit)
        }
        None => {
            let engine = builder.build_serialized(&mut network, &mut config)?;
            let b = engine.as_bytes().to_vec();
            if b.is_empty() {
                return Err(TrtError::Build("TensorRT returned an empty engine".into()).into());
            }
            // A cache that cannot take the engine costs the next build time, never this engine.
            if use_cache && cache_ok {
                let res = write_atomic(&cached_engine, &b)
                    .and_then(|()| write_atomic(&cached_sum, sha256_bytes(&b).as_bytes()));
                if let Err(e) = res {
                    log(&format!("warning: the engine was not cached: {e}"));
                }
            }
            (b, if use_cache { CacheOutcome::Miss } else { CacheOutcome::Off })
        }
    };
    let build_seconds = tb.elapsed().as_secs_f64();
    drop(parser);
    let bytes = owned.as_slice();
    let outcome = match (&cache_file, config.timing_cache()) {
        _ if build_cache == CacheOutcome::Hit => CacheOutcome::Off,
        (Some(p), Some(c)) => {
            let new = c.serialize()?;
            let o = match &old_cache {
                None => CacheOutcome::Miss,
                Some(old) if *old == new => CacheOutcome::Hit,
                Some(_) => CacheOutcome::Partial,
            };
            if o != CacheOutcome::Hit {
                if let Err(e) = write_atomic(p, &new) {
                    log(&format!("warning: the timing cache was not saved: {e}"));
                }
            }
            o
        }
        _ => CacheOutcome::Off,
    };
    let engine_path = dir.join(ENGINE_FILE);
    write_atomic(&engine_path, bytes)?;
    log(&format!("wrote {} ({:.1} MB) in {:.1} s", engine_path.display(), bytes.len() as f64 / 1e6, build_seconds));

    let s = lib.slots();
    let io = |v: &[NetworkTensor]| -> Vec<IoInfo> {
        v.iter()
            .map(|t| IoInfo { name: t.name.clone(), dtype: dtype_name(s, t.dtype).into(), shape: t.dims.clone() })
            .collect()
    };
    let section = TrtManifest {
        flavour: lib.flavour.as_str().into(),
        version: lib.version_string(),
        library: lib.path.display().to_string(),
        targets: tlist,
        attention: man.onnx.attention,
        optimization_level: req.tensorrt.optimization_level,
        workspace_bytes: workspace,
        profiles: profs,
        inputs: io(&ins),
        outputs: io(&outs),
        layers,
        engine_file: ENGINE_FILE.into(),
        engine_bytes: bytes.len() as u64,
        engine_sha256: sha256_bytes(bytes),
        build_seconds,
        timing_cache: outcome,
        timing_cache_file: cache_file.map(|p| p.display().to_string()),
        build_cache,
        build_cache_key: key,
    };
    man.files.retain(|f| f.name != ENGINE_FILE);
    man.files.push(FileInfo {
        name: ENGINE_FILE.into(),
        bytes: section.engine_bytes,
        sha256: section.engine_sha256.clone(),
    });
    man.build = b;
    man.extra.insert(
        TRT_MANIFEST_KEY.into(),
        serde_json::to_value(&section).map_err(|e| TrtError::Invalid(format!("manifest: {e}")))?,
    );
    let json = serde_json::to_vec_pretty(&man).map_err(|e| TrtError::Invalid(format!("manifest: {e}")))?;
    write_atomic(&dir.join(MANIFEST_FILE), &json)?;
    log(&format!("total {:.1} s", t0.elapsed().as_secs_f64()));
    Ok(BuildReport { engine: engine_path, section })
}

/// SHA-256 over everything that decides an engine's bytes: the ONNX files' hashed contents
/// (`onnx`, as verified on disk), the library, targets, settings and profiles.
pub fn build_key(
    onnx: &[FileInfo],
    lib: &TrtLibrary,
    targets: &[u32],
    t: &TensorRtSection,
    workspace: Option<u64>,
    profs: &[ProfileInfo],
) -> String {
    let v = serde_json::json!({
        "trtforge": env!("CARGO_PKG_VERSION"),
        "flavour": lib.flavour.as_str(),
        "version": lib.version,
        "onnx": onnx,
        "targets": targets,
        "optimization_level": t.optimization_level,
        "workspace": workspace,
        "profiles": profs,
    });
    sha256_bytes(v.to_string().as_bytes())
}

/// The parsed network must have the inputs and outputs the manifest lists.
fn check_io(m: &Manifest, n: &NetworkDefinition) -> Result<(), TrtError> {
    let (ins, outs, _) = n.io();
    let want: Vec<&str> = m.onnx.inputs.iter().map(|t| t.name.as_str()).collect();
    let got: Vec<&str> = ins.iter().map(|t| t.name.as_str()).collect();
    if want != got {
        return Err(TrtError::Invalid(format!("the ONNX model's inputs {got:?} differ from the manifest's {want:?}")));
    }
    let want: Vec<&str> = m.onnx.outputs.iter().map(|t| t.name.as_str()).collect();
    let got: Vec<&str> = outs.iter().map(|t| t.name.as_str()).collect();
    if want != got {
        return Err(TrtError::Invalid(format!("the ONNX model's outputs {got:?} differ from the manifest's {want:?}")));
    }
    Ok(())
}
