//! Owning handles over TensorRT objects. Each frees its object in `Drop`; a child keeps its parent
//! alive through an `Arc` (TensorRT requires e.g. the runtime to outlive its engines), so handles
//! can be stored together in one struct without lifetimes.
use super::callbacks::ProgressMonitor;
use super::library::TrtLibrary;
use super::result::{self as r, IoTensor};
use super::sys::{delete_public, Dims, Slots};
use super::TrtError;
use std::ffi::{c_void, CString};
use std::path::Path;
use std::sync::Arc;

type P = *mut c_void;

/// An owned public TensorRT object, deleted through its deleting destructor.
struct Owned(P);

// SAFETY: TensorRT objects may be used from any thread, one thread at a time; every wrapper
// below takes `&mut self` for mutating calls and none is Sync.
unsafe impl Send for Owned {}

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: we own the object; children hold an Arc to their parent, so they go first.
        unsafe { delete_public(self.0) }
    }
}

/// A shared handle. `Arc`, not `Rc`, although `Owned` is not `Sync`: a `Send` wrapper (the parser) keeps a
/// clone of its builder, which another wrapper may drop on another thread, and only an atomic count is
/// sound there; no `&Owned` is ever shared between threads.
#[allow(clippy::arc_with_non_send_sync)]
fn owned(p: P) -> Arc<Owned> {
    Arc::new(Owned(p))
}

fn cstring(s: &str) -> Result<CString, TrtError> {
    CString::new(s).map_err(|_| TrtError::Call(format!("name {s:?} contains a NUL byte")))
}

/// `IBuilder`.
pub struct Builder {
    lib: &'static TrtLibrary,
    obj: Arc<Owned>,
}

impl Builder {
    pub fn new(lib: &'static TrtLibrary) -> Result<Self, TrtError> {
        // SAFETY: lib is loaded and version-checked.
        let p = unsafe { r::create_builder(lib)? };
        Ok(Builder { lib, obj: owned(p) })
    }
    pub fn library(&self) -> &'static TrtLibrary {
        self.lib
    }
    fn s(&self) -> &'static Slots {
        self.lib.slots()
    }
    /// A strongly typed network definition (precision comes from the graph).
    pub fn create_network(&mut self) -> Result<NetworkDefinition, TrtError> {
        // SAFETY: live builder of this library.
        let p = unsafe { r::builder_create_network(self.s(), self.obj.0)? };
        Ok(NetworkDefinition { lib: self.lib, obj: Owned(p), _builder: self.obj.clone() })
    }
    pub fn create_config(&mut self) -> Result<BuilderConfig, TrtError> {
        // SAFETY: live builder.
        let p = unsafe { r::builder_create_config(self.s(), self.obj.0)? };
        Ok(BuilderConfig { monitor: None, cache: None, obj: Owned(p), lib: self.lib, _builder: self.obj.clone() })
    }
    /// An optimization profile; the builder owns and frees it.
    pub fn create_profile(&mut self) -> Result<OptimizationProfile, TrtError> {
        // SAFETY: live builder.
        let p = unsafe { r::builder_create_profile(self.s(), self.obj.0)? };
        Ok(OptimizationProfile { lib: self.lib, ptr: p, _builder: self.obj.clone() })
    }
    pub fn set_max_threads(&mut self, n: i32) -> bool {
        // SAFETY: live builder.
        unsafe { r::builder_set_max_threads(self.s(), self.obj.0, n) }
    }
    /// Builds and serializes the engine.
    pub fn build_serialized(
        &mut self,
        network: &mut NetworkDefinition,
        config: &mut BuilderConfig,
    ) -> Result<HostMemory, TrtError> {
        // SAFETY: network and config were made by this builder (same library).
        let p = unsafe { r::builder_build_serialized(self.s(), self.obj.0, network.obj.0, config.obj.0)? };
        Ok(HostMemory { lib: self.lib, obj: Owned(p) })
    }
}

/// `INetworkDefinition`.
pub struct NetworkDefinition {
    lib: &'static TrtLibrary,
    obj: Owned,
    _builder: Arc<Owned>,
}

/// One network input or output.
#[derive(Debug, Clone)]
pub struct NetworkTensor {
    pub name: String,
    /// -1 for a dynamic axis.
    pub dims: Vec<i64>,
    pub dtype: i32,
}

impl NetworkDefinition {
    /// Inputs, outputs and the layer count.
    pub fn io(&self) -> (Vec<NetworkTensor>, Vec<NetworkTensor>, i32) {
        let s = self.lib.slots();
        // SAFETY: live network; tensors are owned by it and read immediately.
        let (ins, outs, layers) = unsafe { r::network_io(s, self.obj.0) };
        let info = |t: &P| {
            // SAFETY: t is a tensor of this network.
            let (name, dims, dtype) = unsafe { r::tensor_info(s, *t) };
            NetworkTensor { name, dims: dims.to_vec(), dtype }
        };
        (ins.iter().map(info).collect(), outs.iter().map(info).collect(), layers)
    }
}

/// `nvonnxparser::IParser`, bound to a network.
pub struct OnnxParser {
    lib: &'static TrtLibrary,
    ptr: P,
}

// SAFETY: as Owned.
unsafe impl Send for OnnxParser {}

impl OnnxParser {
    /// A parser that fills `network`. The network must outlive the parser's use, which the
    /// borrow in [`OnnxParser::parse_file`] enforces.
    pub fn new(network: &mut NetworkDefinition) -> Result<Self, TrtError> {
        // SAFETY: live network of this library.
        let ptr = unsafe { r::create_parser(network.lib, network.obj.0)? };
        Ok(OnnxParser { lib: network.lib, ptr })
    }
    /// Parses an ONNX file (external data is read from beside it) into the network.
    pub fn parse_file(&mut self, _network: &mut NetworkDefinition, path: &Path) -> Result<(), TrtError> {
        let c = cstring(&path.to_string_lossy())?;
        // SAFETY: live parser; verbosity = kWARNING.
        unsafe { r::parser_parse_from_file(self.lib.slots(), self.ptr, &c, 2) }
    }
}

impl Drop for OnnxParser {
    fn drop(&mut self) {
        // SAFETY: we own the parser.
        unsafe { r::parser_delete(self.lib.slots(), self.ptr) }
    }
}

/// `IBuilderConfig`, with the progress monitor and timing cache it points at.
pub struct BuilderConfig {
    // Field order matters: the config is deleted before what it points at.
    obj: Owned,
    monitor: Option<ProgressMonitor>,
    cache: Option<TimingCache>,
    lib: &'static TrtLibrary,
    _builder: Arc<Owned>,
}

impl BuilderConfig {
    fn s(&self) -> &'static Slots {
        self.lib.slots()
    }
    pub fn add_profile(&mut self, p: &OptimizationProfile) -> Result<i32, TrtError> {
        // SAFETY: live config and profile of the same builder.
        unsafe { r::config_add_profile(self.s(), self.obj.0, p.ptr) }
    }
    pub fn set_workspace_limit(&mut self, bytes: usize) {
        // SAFETY: live config.
        unsafe { r::config_set_workspace(self.s(), self.obj.0, bytes) }
    }
    /// 0..=5 (TensorRT's default is 3).
    pub fn set_optimization_level(&mut self, level: i32) {
        // SAFETY: live config.
        unsafe { r::config_set_optimization_level(self.s(), self.obj.0, level) }
    }
    /// TensorRT-RTX ahead-of-time targets, e.g. `[89]`.
    pub fn set_compute_capabilities(&mut self, sms: &[i32]) -> Result<(), TrtError> {
        // SAFETY: live config.
        unsafe { r::config_set_compute_capabilities(self.s(), self.obj.0, sms) }
    }
    /// Prints the builder's phases on stderr.
    pub fn enable_progress(&mut self) {
        let m = ProgressMonitor::new(self.s());
        // SAFETY: the monitor is stored in self and dropped after the config (field order).
        unsafe { r::config_set_progress_monitor(self.s(), self.obj.0, m.as_ptr()) };
        self.monitor = Some(m);
    }
    /// Creates a timing cache from `blob` (empty: a new cache) and attaches it.
    pub fn use_timing_cache(&mut self, blob: &[u8]) -> Result<(), TrtError> {
        // SAFETY: live config; the cache is kept in self, which outlives the builds using it.
        let p = unsafe { r::config_create_timing_cache(self.s(), self.obj.0, blob)? };
        let cache = TimingCache { lib: self.lib, obj: Owned(p) };
        // SAFETY: both live.
        unsafe { r::config_set_timing_cache(self.s(), self.obj.0, cache.obj.0)? };
        self.cache = Some(cache);
        Ok(())
    }
    pub fn timing_cache(&self) -> Option<&TimingCache> {
        self.cache.as_ref()
    }
}

/// `IOptimizationProfile` (owned by its builder, which frees it).
pub struct OptimizationProfile {
    lib: &'static TrtLibrary,
    ptr: P,
    _builder: Arc<Owned>,
}

impl OptimizationProfile {
    /// Sets the min/opt/max shapes of one input.
    pub fn set_shapes(&mut self, input: &str, min: &[i64], opt: &[i64], max: &[i64]) -> Result<(), TrtError> {
        use super::sys::profile_selector::{MAX, MIN, OPT};
        let c = cstring(input)?;
        for (sel, d) in [(MIN, min), (OPT, opt), (MAX, max)] {
            // SAFETY: live profile.
            unsafe { r::profile_set_dimensions(self.lib.slots(), self.ptr, &c, sel, &Dims::new(d))? };
        }
        Ok(())
    }
    pub fn is_valid(&self) -> bool {
        // SAFETY: live profile.
        unsafe { r::profile_is_valid(self.lib.slots(), self.ptr) }
    }
}

/// `IHostMemory`: a serialized engine or cache.
pub struct HostMemory {
    lib: &'static TrtLibrary,
    obj: Owned,
}

impl HostMemory {
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: the slice borrows self, which owns the memory.
        unsafe { r::host_memory_bytes(self.lib.slots(), self.obj.0) }
    }
}

/// `ITimingCache`.
pub struct TimingCache {
    lib: &'static TrtLibrary,
    obj: Owned,
}

impl TimingCache {
    pub fn serialize(&self) -> Result<Vec<u8>, TrtError> {
        // SAFETY: live cache; the host memory is copied then freed.
        let p = unsafe { r::timing_cache_serialize(self.lib.slots(), self.obj.0)? };
        let m = HostMemory { lib: self.lib, obj: Owned(p) };
        Ok(m.as_bytes().to_vec())
    }
}

/// `IRuntime`.
pub struct Runtime {
    lib: &'static TrtLibrary,
    obj: Arc<Owned>,
}

impl Runtime {
    pub fn new(lib: &'static TrtLibrary) -> Result<Self, TrtError> {
        // SAFETY: lib is loaded and version-checked.
        let p = unsafe { r::create_runtime(lib)? };
        Ok(Runtime { lib, obj: owned(p) })
    }
    /// Deserializes an engine. Needs a CUDA context current on this thread.
    pub fn deserialize(&mut self, blob: &[u8]) -> Result<Engine, TrtError> {
        // SAFETY: live runtime.
        let p = unsafe { r::runtime_deserialize(self.lib.slots(), self.obj.0, blob)? };
        Ok(Engine { lib: self.lib, obj: owned(p), _runtime: self.obj.clone() })
    }
}

/// `ICudaEngine`.
pub struct Engine {
    lib: &'static TrtLibrary,
    obj: Arc<Owned>,
    _runtime: Arc<Owned>,
}

impl Engine {
    pub fn io_tensors(&self) -> Vec<IoTensor> {
        // SAFETY: live engine.
        unsafe { r::engine_io(self.lib.slots(), self.obj.0) }
    }
    pub fn nb_profiles(&self) -> i32 {
        // SAFETY: live engine.
        unsafe { r::engine_nb_profiles(self.lib.slots(), self.obj.0) }
    }
    /// (min, opt, max) of an input in a profile.
    pub fn profile_shape(&self, input: &str, profile: i32) -> Result<[Vec<i64>; 3], TrtError> {
        use super::sys::profile_selector::{MAX, MIN, OPT};
        let c = cstring(input)?;
        // SAFETY: live engine.
        let get = |sel| unsafe { r::engine_profile_shape(self.lib.slots(), self.obj.0, &c, profile, sel) }.to_vec();
        Ok([get(MIN), get(OPT), get(MAX)])
    }
    pub fn create_context(&mut self) -> Result<ExecutionContext, TrtError> {
        // SAFETY: live engine.
        let p = unsafe { r::engine_create_context(self.lib.slots(), self.obj.0)? };
        Ok(ExecutionContext { lib: self.lib, obj: Owned(p), _engine: self.obj.clone() })
    }
}

/// `IExecutionContext`.
pub struct ExecutionContext {
    lib: &'static TrtLibrary,
    obj: Owned,
    _engine: Arc<Owned>,
}

impl ExecutionContext {
    /// Selects the optimization profile (enqueued on `stream`).
    ///
    /// # Safety
    /// `stream` must be a live `cudaStream_t` of the CUDA context the engine was deserialized in.
    pub unsafe fn set_profile(&mut self, index: i32, stream: *mut c_void) -> Result<(), TrtError> {
        // SAFETY: live context; the caller guarantees the stream.
        unsafe { r::context_set_profile(self.lib.slots(), self.obj.0, index, stream) }
    }
    pub fn set_input_shape(&mut self, name: &str, dims: &[i64]) -> Result<(), TrtError> {
        let c = cstring(name)?;
        // SAFETY: live context.
        unsafe { r::context_set_input_shape(self.lib.slots(), self.obj.0, &c, &Dims::new(dims)) }
    }
    pub fn tensor_shape(&self, name: &str) -> Result<Vec<i64>, TrtError> {
        let c = cstring(name)?;
        // SAFETY: live context.
        Ok(unsafe { r::context_tensor_shape(self.lib.slots(), self.obj.0, &c) }.to_vec())
    }
    /// Binds a tensor to device memory.
    ///
    /// # Safety
    /// `addr` must be a device allocation large enough for the tensor's shape at enqueue time
    /// that stays alive until the enqueued work has finished.
    pub unsafe fn set_tensor_address(&mut self, name: &str, addr: u64) -> Result<(), TrtError> {
        let c = cstring(name)?;
        // SAFETY: the caller guarantees the address is valid.
        unsafe { r::context_set_tensor_address(self.lib.slots(), self.obj.0, &c, addr) }
    }
    /// Enqueues the inference on `stream`.
    ///
    /// # Safety
    /// Every I/O tensor must be bound (see [`ExecutionContext::set_tensor_address`]) and `stream`
    /// must be a live CUDA stream of the engine's context.
    pub unsafe fn enqueue(&mut self, stream: *mut c_void) -> Result<(), TrtError> {
        // SAFETY: per the caller.
        unsafe { r::context_enqueue(self.lib.slots(), self.obj.0, stream) }
    }
}
