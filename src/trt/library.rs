//! Finding and loading the TensorRT libraries at run time (nothing links against them).
//!
//! Search order: `TRTFORGE_TENSORRT_LIB` (a directory or the core library file), the config's
//! `tensorrt.library`, the directories of `LD_LIBRARY_PATH`, the pip packages `tensorrt_rtx_libs`
//! (TensorRT-RTX) and `tensorrt_libs` (TensorRT), then the system loader's own search. In each
//! directory TensorRT-RTX (`libtensorrt_rtx.so.1`) is preferred to TensorRT (`libnvinfer.so.10`).
use super::callbacks;
use super::sys::{self, Flavour, Supported};
use super::TrtError;
use std::collections::HashMap;
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Core library and ONNX parser file names, per flavour, in order of preference.
const CANDIDATES: &[(Flavour, &str, &str)] = &[
    (Flavour::Rtx, "libtensorrt_rtx.so.1", "libtensorrt_onnxparser_rtx.so.1"),
    (Flavour::TensorRt, "libnvinfer.so.10", "libnvonnxparser.so.10"),
];

pub const INSTALL_HINT: &str = "install TensorRT-RTX with `pip install tensorrt-rtx-cu13-libs==1.7.1.116`, \
or point TRTFORGE_TENSORRT_LIB at the directory holding libtensorrt_rtx.so.1 (or TensorRT's libnvinfer.so.10)";

/// A loaded, version-checked TensorRT library pair. Loaded once per path and never unloaded
/// (TensorRT keeps global state), so handles borrow it for `'static`.
pub struct TrtLibrary {
    pub path: PathBuf,
    pub parser_path: PathBuf,
    pub flavour: Flavour,
    /// `getInferLibVersion()`.
    pub version: i32,
    pub supported: &'static Supported,
    pub(crate) create_builder: sys::CreateInferBuilder,
    pub(crate) create_runtime: sys::CreateInferRuntime,
    pub(crate) create_parser: sys::CreateNvOnnxParser,
    /// The process-wide ILogger object handed to every factory.
    pub(crate) logger: *mut c_void,
    _core: libloading::Library,
    _parser: libloading::Library,
}

// SAFETY: the library handles and function pointers are immutable after loading; the logger
// object is stateless (its messages go to a Mutex-protected log).
unsafe impl Send for TrtLibrary {}
// SAFETY: as above.
unsafe impl Sync for TrtLibrary {}

impl TrtLibrary {
    pub fn slots(&self) -> &'static sys::Slots {
        self.supported.slots
    }
    /// "TensorRT-RTX 1.7.1".
    pub fn describe(&self) -> String {
        let (a, b, c) = sys::split_version(self.version);
        let name = if self.flavour == Flavour::Rtx { "TensorRT-RTX" } else { "TensorRT" };
        format!("{name} {a}.{b}.{c}")
    }
    /// "1.7.1".
    pub fn version_string(&self) -> String {
        let (a, b, c) = sys::split_version(self.version);
        format!("{a}.{b}.{c}")
    }
}

static LOADED: OnceLock<Mutex<HashMap<PathBuf, &'static TrtLibrary>>> = OnceLock::new();

/// Finds the core library: see the module docs for the order. `configured` is the config's
/// `tensorrt.library`.
pub fn find(configured: Option<&Path>) -> Result<(Flavour, PathBuf), TrtError> {
    let mut looked = Vec::new();
    if let Ok(v) = std::env::var("TRTFORGE_TENSORRT_LIB") {
        return pick(Path::new(&v), "TRTFORGE_TENSORRT_LIB");
    }
    if let Some(p) = configured {
        return pick(p, "tensorrt.library in the config");
    }
    let mut dirs: Vec<PathBuf> = std::env::var("LD_LIBRARY_PATH")
        .map(|v| v.split(':').filter(|s| !s.is_empty()).map(PathBuf::from).collect())
        .unwrap_or_default();
    dirs.extend(python_package_dirs());
    for d in &dirs {
        if let Some(found) = in_dir(d) {
            return Ok(found);
        }
        looked.push(d.display().to_string());
    }
    // The system loader's own search (ld.so.cache, /usr/lib/...).
    for (flavour, core, _) in CANDIDATES {
        for sys_dir in ["/usr/lib/x86_64-linux-gnu", "/usr/local/lib", "/usr/lib64", "/usr/local/tensorrt/lib"] {
            let p = Path::new(sys_dir).join(core);
            if p.is_file() {
                return Ok((*flavour, p));
            }
        }
    }
    looked.push("the system library directories".into());
    Err(TrtError::NotFound(format!("TensorRT not found (looked in {}); {INSTALL_HINT}", looked.join(", "))))
}

fn in_dir(d: &Path) -> Option<(Flavour, PathBuf)> {
    CANDIDATES.iter().map(|(f, core, _)| (*f, d.join(core))).find(|(_, p)| p.is_file())
}

fn pick(p: &Path, source: &str) -> Result<(Flavour, PathBuf), TrtError> {
    if p.is_dir() {
        return in_dir(p).ok_or_else(|| {
            TrtError::NotFound(format!(
                "{source}: {} holds neither libtensorrt_rtx.so.1 nor libnvinfer.so.10; {INSTALL_HINT}",
                p.display()
            ))
        });
    }
    if p.is_file() {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // The library's own family decides which parser goes with it.
        let flavour = if name.contains("nvinfer") { Flavour::TensorRt } else { Flavour::Rtx };
        return Ok((flavour, p.to_path_buf()));
    }
    Err(TrtError::NotFound(format!("{source}: {} does not exist; {INSTALL_HINT}", p.display())))
}

/// Directories of the pip packages that ship the libraries, if Python has them.
fn python_package_dirs() -> Vec<PathBuf> {
    let script = concat!(
        "import importlib.util as u\n",
        "for m in ('tensorrt_rtx_libs', 'tensorrt_libs'):\n",
        "    s = u.find_spec(m)\n",
        "    if s and s.submodule_search_locations:\n",
        "        print(list(s.submodule_search_locations)[0])\n",
    );
    let out = std::process::Command::new("python3").args(["-c", script]).output();
    match out {
        Ok(o) if o.status.success() => {
            String::from_utf8_lossy(&o.stdout).lines().map(|l| PathBuf::from(l.trim())).collect()
        }
        _ => Vec::new(),
    }
}

/// Loads (once) the library at `path` and checks its version against the slot tables.
pub fn load(flavour: Flavour, path: &Path) -> Result<&'static TrtLibrary, TrtError> {
    let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let cache = LOADED.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = cache.lock().map_err(|_| TrtError::Load("library cache poisoned".into()))?;
    if let Some(l) = map.get(&key) {
        return Ok(l);
    }
    let lib = open(flavour, &key)?;
    let lib: &'static TrtLibrary = Box::leak(Box::new(lib));
    map.insert(key, lib);
    Ok(lib)
}

/// Finds and loads the library.
pub fn find_and_load(configured: Option<&Path>) -> Result<&'static TrtLibrary, TrtError> {
    let (flavour, path) = find(configured)?;
    load(flavour, &path)
}

fn dlopen(path: &Path) -> Result<libloading::Library, TrtError> {
    use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
    // SAFETY: loading runs the library's initializers; TensorRT's are safe to run once per process.
    // RTLD_GLOBAL: the parser library resolves nvinfer symbols from the already loaded core.
    unsafe { Library::open(Some(path), RTLD_NOW | RTLD_GLOBAL) }
        .map(libloading::Library::from)
        .map_err(|e| TrtError::Load(format!("could not load {}: {e}", path.display())))
}

fn open(flavour: Flavour, path: &Path) -> Result<TrtLibrary, TrtError> {
    let core = dlopen(path)?;
    // SAFETY: the symbol has this C signature in every TensorRT and TensorRT-RTX release.
    let get_version: sys::GetInferLibVersion = unsafe { core.get::<sys::GetInferLibVersion>(b"getInferLibVersion\0") }
        .map(|s| *s)
        .map_err(|e| TrtError::Load(format!("{} is not a TensorRT library: {e}", path.display())))?;
    // SAFETY: takes no arguments and returns an int.
    let version = unsafe { get_version() };
    let (a, b, c) = sys::split_version(version);
    let name = if flavour == Flavour::Rtx { "TensorRT-RTX" } else { "TensorRT" };
    let supported = sys::slots_for(flavour, version).ok_or_else(|| {
        TrtError::UnsupportedVersion(format!(
            "{} is {name} {a}.{b}.{c} (getInferLibVersion() = {version}), which trtforge has no slot table for; \
supported: {}. Install a supported version (`pip install tensorrt-rtx-cu13-libs==1.7.1.116`) or generate a table \
with scripts/trt_slots/gen.sh",
            path.display(),
            sys::supported_list()
        ))
    })?;
    let parser_name = CANDIDATES.iter().find(|c| c.0 == flavour).map(|c| c.2).unwrap_or("libnvonnxparser.so.10");
    let parser_path = path.parent().map(|d| d.join(parser_name)).filter(|p| p.is_file()).ok_or_else(|| {
        TrtError::NotFound(format!(
            "{} was found but its ONNX parser {parser_name} is not beside it; {INSTALL_HINT}",
            path.display()
        ))
    })?;
    let parser = dlopen(&parser_path)?;
    let sym = |lib: &libloading::Library, n: &[u8], file: &Path| -> Result<*const c_void, TrtError> {
        // SAFETY: only the address is read here; it is cast to its documented signature below.
        unsafe { lib.get::<*const c_void>(n) }.map(|s| *s).map_err(|e| {
            TrtError::Load(format!("{}: missing {}: {e}", file.display(), String::from_utf8_lossy(&n[..n.len() - 1])))
        })
    };
    let cb = sym(&core, b"createInferBuilder_INTERNAL\0", path)?;
    let cr = sym(&core, b"createInferRuntime_INTERNAL\0", path)?;
    let cp = sym(&parser, b"createNvOnnxParser_INTERNAL\0", &parser_path)?;
    let logger = callbacks::new_logger(supported.slots);
    // SAFETY: these exported factories have the C signatures in sys (NvInfer.h, NvOnnxParser.h).
    let (create_builder, create_runtime, create_parser) = unsafe {
        (
            std::mem::transmute::<*const c_void, sys::CreateInferBuilder>(cb),
            std::mem::transmute::<*const c_void, sys::CreateInferRuntime>(cr),
            std::mem::transmute::<*const c_void, sys::CreateNvOnnxParser>(cp),
        )
    };
    Ok(TrtLibrary {
        path: path.to_path_buf(),
        parser_path,
        flavour,
        version,
        supported,
        create_builder,
        create_runtime,
        create_parser,
        logger,
        _core: core,
        _parser: parser,
    })
}
