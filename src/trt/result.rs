//! Thin `unsafe fn`s over the vtable calls, one per TensorRT method trtforge uses. Null pointers and
//! `false` results become [`TrtError`]s carrying the errors TensorRT logged meanwhile.
//!
//! Conventions: `obj` arguments are public-class pointers (`IBuilder*`, ...); each function calls
//! the method on its `mImpl`. Parser functions take `IParser*` / `IParserError*` directly.
use super::callbacks::{cstr, ErrorMark};
use super::library::TrtLibrary;
use super::sys::{impl_of, vfn, Dims, Slots};
use super::TrtError;
use std::ffi::{c_char, c_void, CStr};

type P = *mut c_void;

/// Calls method `$slot` on the mImpl of `$obj` with signature `fn(P, args) -> ret`.
macro_rules! call {
    ($obj:expr, $slot:expr, fn($($t:ty),*) -> $r:ty, $($a:expr),*) => {{
        let this = impl_of($obj);
        let f: unsafe extern "C" fn(P $(, $t)*) -> $r = vfn(this, $slot);
        f(this $(, $a)*)
    }};
}

fn null_err(what: &str, mark: ErrorMark) -> TrtError {
    TrtError::Call(with_logged(format!("{what} failed"), mark))
}

/// Appends the errors TensorRT logged since `mark` to a message.
pub fn with_logged(msg: String, mark: ErrorMark) -> String {
    let errs = mark.since();
    if errs.is_empty() {
        msg
    } else {
        format!("{msg}: {}", errs.join("; "))
    }
}

fn nonnull(p: P, what: &str, mark: ErrorMark) -> Result<P, TrtError> {
    if p.is_null() {
        Err(null_err(what, mark))
    } else {
        Ok(p)
    }
}

/// `createInferBuilder`.
///
/// # Safety
/// `lib` must be a loaded, version-checked library.
pub unsafe fn create_builder(lib: &TrtLibrary) -> Result<P, TrtError> {
    let m = ErrorMark::now();
    // SAFETY: the factory takes the logger and the library's own version.
    let p = unsafe { (lib.create_builder)(lib.logger, lib.version) };
    nonnull(p, "createInferBuilder", m)
}

/// `createInferRuntime`.
///
/// # Safety
/// As [`create_builder`].
pub unsafe fn create_runtime(lib: &TrtLibrary) -> Result<P, TrtError> {
    let m = ErrorMark::now();
    // SAFETY: as create_builder.
    let p = unsafe { (lib.create_runtime)(lib.logger, lib.version) };
    nonnull(p, "createInferRuntime", m)
}

/// `nvonnxparser::createParser(network, logger)`.
///
/// # Safety
/// `network` must be a live `INetworkDefinition*` of this library.
pub unsafe fn create_parser(lib: &TrtLibrary, network: P) -> Result<P, TrtError> {
    let m = ErrorMark::now();
    // SAFETY: network is live; the parser version comes from the same headers as the slot table.
    let p = unsafe { (lib.create_parser)(network, lib.logger, lib.slots().parser_version) };
    nonnull(p, "createNvOnnxParser", m)
}

/// `IBuilder::createNetworkV2(flags)`.
///
/// # Safety
/// `builder` must be a live `IBuilder*` whose table is `s`.
pub unsafe fn builder_create_network(s: &Slots, builder: P) -> Result<P, TrtError> {
    let m = ErrorMark::now();
    // SAFETY: slot from the table of this library version.
    let p = unsafe { call!(builder, s.builder_create_network_v2, fn(u32) -> P, s.network_flags) };
    nonnull(p, "IBuilder::createNetworkV2", m)
}

/// `IBuilder::createBuilderConfig()`.
///
/// # Safety
/// As [`builder_create_network`].
pub unsafe fn builder_create_config(s: &Slots, builder: P) -> Result<P, TrtError> {
    let m = ErrorMark::now();
    // SAFETY: as builder_create_network.
    let p = unsafe { call!(builder, s.builder_create_builder_config, fn() -> P,) };
    nonnull(p, "IBuilder::createBuilderConfig", m)
}

/// `IBuilder::createOptimizationProfile()`; the builder owns the result.
///
/// # Safety
/// As [`builder_create_network`].
pub unsafe fn builder_create_profile(s: &Slots, builder: P) -> Result<P, TrtError> {
    let m = ErrorMark::now();
    // SAFETY: as builder_create_network.
    let p = unsafe { call!(builder, s.builder_create_optimization_profile, fn() -> P,) };
    nonnull(p, "IBuilder::createOptimizationProfile", m)
}

/// `IBuilder::buildSerializedNetwork(network, config)` → `IHostMemory*`.
///
/// # Safety
/// All three must be live objects of the same library.
pub unsafe fn builder_build_serialized(s: &Slots, builder: P, network: P, config: P) -> Result<P, TrtError> {
    let m = ErrorMark::now();
    // SAFETY: references are passed as pointers.
    let p = unsafe { call!(builder, s.builder_build_serialized_network, fn(P, P) -> P, network, config) };
    if p.is_null() {
        return Err(TrtError::Build(with_logged("TensorRT could not build the engine".into(), m)));
    }
    Ok(p)
}

/// `IBuilder::setMaxThreads(n)`.
///
/// # Safety
/// As [`builder_create_network`].
pub unsafe fn builder_set_max_threads(s: &Slots, builder: P, n: i32) -> bool {
    // SAFETY: as builder_create_network.
    unsafe { call!(builder, s.builder_set_max_threads, fn(i32) -> bool, n) }
}

/// `IBuilderConfig::addOptimizationProfile(profile)` → index.
///
/// # Safety
/// `config` and `profile` must be live objects of the library whose table is `s`.
pub unsafe fn config_add_profile(s: &Slots, config: P, profile: P) -> Result<i32, TrtError> {
    let m = ErrorMark::now();
    // SAFETY: slot from the table.
    let i = unsafe { call!(config, s.config_add_optimization_profile, fn(P) -> i32, profile) };
    if i < 0 {
        return Err(null_err("IBuilderConfig::addOptimizationProfile", m));
    }
    Ok(i)
}

/// `IBuilderConfig::setMemoryPoolLimit(kWORKSPACE, bytes)`.
///
/// # Safety
/// `config` must be live.
pub unsafe fn config_set_workspace(s: &Slots, config: P, bytes: usize) {
    // SAFETY: slot from the table.
    unsafe { call!(config, s.config_set_memory_pool_limit, fn(i32, usize) -> (), s.pool_workspace, bytes) }
}

/// `IBuilderConfig::setBuilderOptimizationLevel(level)`.
///
/// # Safety
/// `config` must be live.
pub unsafe fn config_set_optimization_level(s: &Slots, config: P, level: i32) {
    // SAFETY: slot from the table.
    unsafe { call!(config, s.config_set_builder_optimization_level, fn(i32) -> (), level) }
}

/// `IBuilderConfig::setProgressMonitor(monitor)`.
///
/// # Safety
/// `config` must be live and `monitor` an `IProgressMonitor` object outliving the config's use.
pub unsafe fn config_set_progress_monitor(s: &Slots, config: P, monitor: P) {
    // SAFETY: slot from the table.
    unsafe { call!(config, s.config_set_progress_monitor, fn(P) -> (), monitor) }
}

/// TensorRT-RTX: `setNbComputeCapabilities(n)` then `setComputeCapability(cc, i)` for each target.
///
/// # Safety
/// `config` must be live.
pub unsafe fn config_set_compute_capabilities(s: &Slots, config: P, ccs: &[i32]) -> Result<(), TrtError> {
    let (Some(nb), Some(set)) = (s.config_set_nb_compute_capabilities, s.config_set_compute_capability) else {
        return Err(TrtError::Call("this TensorRT has no ahead-of-time compute-capability targets".into()));
    };
    let m = ErrorMark::now();
    // SAFETY: RTX slots from the table.
    if !unsafe { call!(config, nb, fn(i32) -> bool, ccs.len() as i32) } {
        return Err(null_err("IBuilderConfig::setNbComputeCapabilities", m));
    }
    for (i, &cc) in ccs.iter().enumerate() {
        // SAFETY: as above.
        if !unsafe { call!(config, set, fn(i32, i32) -> bool, cc, i as i32) } {
            return Err(null_err(&format!("IBuilderConfig::setComputeCapability(sm{cc})"), m));
        }
    }
    Ok(())
}

/// `IBuilderConfig::createTimingCache(blob, size)`; an empty blob makes an empty cache.
///
/// # Safety
/// `config` must be live.
pub unsafe fn config_create_timing_cache(s: &Slots, config: P, blob: &[u8]) -> Result<P, TrtError> {
    let m = ErrorMark::now();
    let ptr = if blob.is_empty() { std::ptr::null() } else { blob.as_ptr() as *const c_void };
    // SAFETY: the blob is copied by TensorRT during the call.
    let p = unsafe { call!(config, s.config_create_timing_cache, fn(*const c_void, usize) -> P, ptr, blob.len()) };
    nonnull(p, "IBuilderConfig::createTimingCache", m)
}

/// `IBuilderConfig::setTimingCache(cache, ignoreMismatch = false)`.
///
/// # Safety
/// `config` and `cache` must be live; the cache must outlive the build.
pub unsafe fn config_set_timing_cache(s: &Slots, config: P, cache: P) -> Result<(), TrtError> {
    let m = ErrorMark::now();
    // SAFETY: slot from the table.
    if unsafe { call!(config, s.config_set_timing_cache, fn(P, bool) -> bool, cache, false) } {
        Ok(())
    } else {
        Err(null_err("IBuilderConfig::setTimingCache", m))
    }
}

/// `ITimingCache::serialize()` → `IHostMemory*`.
///
/// # Safety
/// `cache` must be live.
pub unsafe fn timing_cache_serialize(s: &Slots, cache: P) -> Result<P, TrtError> {
    let m = ErrorMark::now();
    // SAFETY: slot from the table.
    let p = unsafe { call!(cache, s.timing_cache_serialize, fn() -> P,) };
    nonnull(p, "ITimingCache::serialize", m)
}

/// The bytes of an `IHostMemory`, valid while it lives.
///
/// # Safety
/// `mem` must be live and the returned slice must not outlive it.
pub unsafe fn host_memory_bytes<'a>(s: &Slots, mem: P) -> &'a [u8] {
    // SAFETY: slots from the table.
    let (data, size) =
        unsafe { (call!(mem, s.host_memory_data, fn() -> *mut u8,), call!(mem, s.host_memory_size, fn() -> usize,)) };
    if data.is_null() || size == 0 {
        return &[];
    }
    // SAFETY: TensorRT owns size bytes at data until the IHostMemory is deleted.
    unsafe { std::slice::from_raw_parts(data, size) }
}

/// `INetworkDefinition` input/output tensors and layer count.
///
/// # Safety
/// `network` must be live.
pub unsafe fn network_io(s: &Slots, network: P) -> (Vec<P>, Vec<P>, i32) {
    // SAFETY: slots from the table; indices are below the counts TensorRT reported.
    unsafe {
        let ni = call!(network, s.network_get_nb_inputs, fn() -> i32,);
        let no = call!(network, s.network_get_nb_outputs, fn() -> i32,);
        let ins = (0..ni).map(|i| call!(network, s.network_get_input, fn(i32) -> P, i)).collect();
        let outs = (0..no).map(|i| call!(network, s.network_get_output, fn(i32) -> P, i)).collect();
        (ins, outs, call!(network, s.network_get_nb_layers, fn() -> i32,))
    }
}

/// `ITensor` name, dimensions and data type.
///
/// # Safety
/// `tensor` must be a live `ITensor*`.
pub unsafe fn tensor_info(s: &Slots, tensor: P) -> (String, Dims, i32) {
    // SAFETY: slots from the table; Dims is returned through the hidden result pointer.
    unsafe {
        (
            cstr(call!(tensor, s.tensor_get_name, fn() -> *const c_char,)),
            call!(tensor, s.tensor_get_dimensions, fn() -> Dims,),
            call!(tensor, s.tensor_get_type, fn() -> i32,),
        )
    }
}

/// `IOptimizationProfile::setDimensions(name, selector, dims)`.
///
/// # Safety
/// `profile` must be live.
pub unsafe fn profile_set_dimensions(
    s: &Slots,
    profile: P,
    name: &CStr,
    sel: i32,
    dims: &Dims,
) -> Result<(), TrtError> {
    let m = ErrorMark::now();
    // SAFETY: slot from the table; dims by reference.
    let ok = unsafe {
        call!(profile, s.profile_set_dimensions, fn(*const c_char, i32, *const Dims) -> bool, name.as_ptr(), sel, dims)
    };
    if ok {
        Ok(())
    } else {
        Err(null_err(&format!("IOptimizationProfile::setDimensions({})", name.to_string_lossy()), m))
    }
}

/// `IOptimizationProfile::isValid()`.
///
/// # Safety
/// `profile` must be live.
pub unsafe fn profile_is_valid(s: &Slots, profile: P) -> bool {
    // SAFETY: slot from the table.
    unsafe { call!(profile, s.profile_is_valid, fn() -> bool,) }
}

/// `IParser::parseFromFile(path, verbosity)`; on failure the parser's errors, with node names.
///
/// # Safety
/// `parser` must be a live `IParser*` of the library whose table is `s`.
pub unsafe fn parser_parse_from_file(s: &Slots, parser: P, path: &CStr, verbosity: i32) -> Result<(), TrtError> {
    let m = ErrorMark::now();
    // SAFETY: IParser methods live in its own vtable (no mImpl).
    let ok = unsafe {
        let f: unsafe extern "C" fn(P, *const c_char, i32) -> bool = vfn(parser, s.parser_parse_from_file);
        f(parser, path.as_ptr(), verbosity)
    };
    if ok {
        return Ok(());
    }
    // SAFETY: as above; errors are owned by the parser and read before it is freed.
    let errors = unsafe { parser_errors(s, parser) };
    let mut msg = format!("TensorRT's ONNX parser rejected {}", path.to_string_lossy());
    if errors.is_empty() {
        msg = with_logged(msg, m);
    } else {
        msg = format!("{msg}:\n  {}", errors.join("\n  "));
    }
    Err(TrtError::Parse(msg))
}

/// The parser's errors as "node N (name, op): description".
///
/// # Safety
/// `parser` must be live.
pub unsafe fn parser_errors(s: &Slots, parser: P) -> Vec<String> {
    // SAFETY: IParser/IParserError methods live in their own vtables.
    unsafe {
        let nb: unsafe extern "C" fn(P) -> i32 = vfn(parser, s.parser_get_nb_errors);
        let get: unsafe extern "C" fn(P, i32) -> P = vfn(parser, s.parser_get_error);
        (0..nb(parser))
            .filter_map(|i| {
                let e = get(parser, i);
                if e.is_null() {
                    return None;
                }
                let desc: unsafe extern "C" fn(P) -> *const c_char = vfn(e, s.parser_error_desc);
                let node: unsafe extern "C" fn(P) -> i32 = vfn(e, s.parser_error_node);
                let name: unsafe extern "C" fn(P) -> *const c_char = vfn(e, s.parser_error_node_name);
                let op: unsafe extern "C" fn(P) -> *const c_char = vfn(e, s.parser_error_node_operator);
                let code: unsafe extern "C" fn(P) -> i32 = vfn(e, s.parser_error_code);
                let (n, nm, o) = (node(e), cstr(name(e)), cstr(op(e)));
                let at = if n >= 0 { format!("node {n} ({nm}, {o})") } else { "model".to_string() };
                Some(format!("{at}: {} [code {}]", cstr(desc(e)), code(e)))
            })
            .collect()
    }
}

/// Deletes an `IParser` through its own destructor slot.
///
/// # Safety
/// `parser` must be a live `IParser*` owned by the caller.
pub unsafe fn parser_delete(s: &Slots, parser: P) {
    // SAFETY: parser_dtor + 1 is the deleting destructor.
    unsafe {
        let f: unsafe extern "C" fn(P) = vfn(parser, s.parser_dtor + 1);
        f(parser)
    }
}

/// `IRuntime::deserializeCudaEngine(blob, size)`.
///
/// # Safety
/// `runtime` must be live.
pub unsafe fn runtime_deserialize(s: &Slots, runtime: P, blob: &[u8]) -> Result<P, TrtError> {
    let m = ErrorMark::now();
    // SAFETY: TensorRT copies what it needs from the blob during the call.
    let p = unsafe {
        call!(
            runtime,
            s.runtime_deserialize_cuda_engine,
            fn(*const c_void, usize) -> P,
            blob.as_ptr() as *const c_void,
            blob.len()
        )
    };
    if p.is_null() {
        return Err(TrtError::Runtime(with_logged("TensorRT could not deserialize the engine".into(), m)));
    }
    Ok(p)
}

/// One I/O tensor of an engine.
#[derive(Debug, Clone)]
pub struct IoTensor {
    pub name: String,
    pub is_input: bool,
    pub dtype: i32,
    pub dims: Dims,
}

/// `ICudaEngine`'s I/O tensors.
///
/// # Safety
/// `engine` must be live.
pub unsafe fn engine_io(s: &Slots, engine: P) -> Vec<IoTensor> {
    // SAFETY: slots from the table; names are copied before the next call.
    unsafe {
        let n = call!(engine, s.engine_get_nb_io_tensors, fn() -> i32,);
        (0..n)
            .map(|i| {
                let np = call!(engine, s.engine_get_io_tensor_name, fn(i32) -> *const c_char, i);
                let mode = call!(engine, s.engine_get_tensor_io_mode, fn(*const c_char) -> i32, np);
                let dtype = call!(engine, s.engine_get_tensor_data_type, fn(*const c_char) -> i32, np);
                let dims = call!(engine, s.engine_get_tensor_shape, fn(*const c_char) -> Dims, np);
                IoTensor { name: cstr(np), is_input: mode == s.io_mode_input, dtype, dims }
            })
            .collect()
    }
}

/// `ICudaEngine::getNbOptimizationProfiles()`.
///
/// # Safety
/// `engine` must be live.
pub unsafe fn engine_nb_profiles(s: &Slots, engine: P) -> i32 {
    // SAFETY: slot from the table.
    unsafe { call!(engine, s.engine_get_nb_optimization_profiles, fn() -> i32,) }
}

/// `ICudaEngine::getProfileShape(name, profile, selector)`.
///
/// # Safety
/// `engine` must be live.
pub unsafe fn engine_profile_shape(s: &Slots, engine: P, name: &CStr, profile: i32, sel: i32) -> Dims {
    // SAFETY: slot from the table.
    unsafe {
        call!(engine, s.engine_get_profile_shape, fn(*const c_char, i32, i32) -> Dims, name.as_ptr(), profile, sel)
    }
}

/// `ICudaEngine::createExecutionContext(kSTATIC)`.
///
/// # Safety
/// `engine` must be live.
pub unsafe fn engine_create_context(s: &Slots, engine: P) -> Result<P, TrtError> {
    let m = ErrorMark::now();
    // SAFETY: slot from the table.
    let p = unsafe { call!(engine, s.engine_create_execution_context, fn(i32) -> P, super::sys::ALLOCATION_STATIC) };
    nonnull(p, "ICudaEngine::createExecutionContext", m)
}

/// `IExecutionContext::setOptimizationProfileAsync(index, stream)`.
///
/// # Safety
/// `ctx` must be live and `stream` a CUDA stream of the current context (or null).
pub unsafe fn context_set_profile(s: &Slots, ctx: P, index: i32, stream: P) -> Result<(), TrtError> {
    let m = ErrorMark::now();
    // SAFETY: slot from the table.
    if unsafe { call!(ctx, s.context_set_optimization_profile_async, fn(i32, P) -> bool, index, stream) } {
        Ok(())
    } else {
        Err(null_err(&format!("IExecutionContext::setOptimizationProfileAsync({index})"), m))
    }
}

/// `IExecutionContext::setInputShape(name, dims)`.
///
/// # Safety
/// `ctx` must be live.
pub unsafe fn context_set_input_shape(s: &Slots, ctx: P, name: &CStr, dims: &Dims) -> Result<(), TrtError> {
    let m = ErrorMark::now();
    // SAFETY: slot from the table.
    if unsafe { call!(ctx, s.context_set_input_shape, fn(*const c_char, *const Dims) -> bool, name.as_ptr(), dims) } {
        Ok(())
    } else {
        Err(null_err(&format!("IExecutionContext::setInputShape({}, {:?})", name.to_string_lossy(), dims.to_vec()), m))
    }
}

/// `IExecutionContext::getTensorShape(name)`.
///
/// # Safety
/// `ctx` must be live.
pub unsafe fn context_tensor_shape(s: &Slots, ctx: P, name: &CStr) -> Dims {
    // SAFETY: slot from the table.
    unsafe { call!(ctx, s.context_get_tensor_shape, fn(*const c_char) -> Dims, name.as_ptr()) }
}

/// `IExecutionContext::setTensorAddress(name, device_ptr)`.
///
/// # Safety
/// `ctx` must be live; `addr` must be device memory large enough for the tensor's current shape
/// and stay allocated while enqueued work uses it.
pub unsafe fn context_set_tensor_address(s: &Slots, ctx: P, name: &CStr, addr: u64) -> Result<(), TrtError> {
    let m = ErrorMark::now();
    // SAFETY: slot from the table.
    if unsafe { call!(ctx, s.context_set_tensor_address, fn(*const c_char, P) -> bool, name.as_ptr(), addr as P) } {
        Ok(())
    } else {
        Err(null_err(&format!("IExecutionContext::setTensorAddress({})", name.to_string_lossy()), m))
    }
}

/// `IExecutionContext::enqueueV3(stream)`.
///
/// # Safety
/// `ctx` must be live with every I/O address and input shape set; `stream` a live CUDA stream.
pub unsafe fn context_enqueue(s: &Slots, ctx: P, stream: P) -> Result<(), TrtError> {
    let m = ErrorMark::now();
    // SAFETY: slot from the table.
    if unsafe { call!(ctx, s.context_enqueue_v3, fn(P) -> bool, stream) } {
        Ok(())
    } else {
        Err(TrtError::Runtime(with_logged("IExecutionContext::enqueueV3 failed".into(), m)))
    }
}
