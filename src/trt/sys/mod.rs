//! Raw TensorRT ABI: plain types, enum values, the libraries' C entry points and the per-version
//! vtable slot tables. Nothing here is safe to call without reading `src/trt/result.rs`.
//!
//! The libraries export only C factories (`createInferBuilder_INTERNAL`, ...). Every public C++
//! class (`IBuilder`, `ICudaEngine`, ...) is 16 bytes: its own vtable pointer (two destructor
//! slots) and `mImpl` at offset 8, a pointer to an `apiv::V*` object whose vtable holds the
//! methods. Methods are called as `vt[slot](mImpl, args...)` with the System V calling convention
//! (`this` first; a returned `Dims` goes through the hidden result pointer, as `extern "C"` does).
//! `nvonnxparser::IParser`/`IParserError` have no `mImpl`: their own vtables hold the methods.
//! Slot numbers differ between versions, so each supported version has a table generated from its
//! public headers by `scripts/trt_slots/gen.sh`; the table is picked from `getInferLibVersion()`.
use std::ffi::{c_char, c_void};

mod slots_rtx_1_7;
mod slots_trt_10;

/// `nvinfer1::Dims64`: `{ int32_t nbDims; int64_t d[8]; }`, 72 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dims {
    pub nb_dims: i32,
    pub d: [i64; MAX_DIMS],
}
pub const MAX_DIMS: usize = 8;

impl Dims {
    pub fn new(v: &[i64]) -> Dims {
        let mut d = Dims { nb_dims: v.len().min(MAX_DIMS) as i32, d: [0; MAX_DIMS] };
        d.d[..d.nb_dims as usize].copy_from_slice(&v[..d.nb_dims as usize]);
        d
    }
    /// The dimensions as a vector (empty for an invalid `nbDims`).
    pub fn to_vec(&self) -> Vec<i64> {
        let n = self.nb_dims.clamp(0, MAX_DIMS as i32) as usize;
        self.d[..n].to_vec()
    }
}

/// `nvinfer1::InterfaceInfo`: returned in registers (16 bytes, two INTEGER eightbytes).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct InterfaceInfo {
    pub kind: *const c_char,
    pub major: i32,
    pub minor: i32,
}

/// `ILogger::Severity`.
pub mod severity {
    pub const INTERNAL_ERROR: i32 = 0;
    pub const ERROR: i32 = 1;
    pub const WARNING: i32 = 2;
    pub const INFO: i32 = 3;
    pub const VERBOSE: i32 = 4;
}

/// `OptProfileSelector`.
pub mod profile_selector {
    pub const MIN: i32 = 0;
    pub const OPT: i32 = 1;
    pub const MAX: i32 = 2;
}

/// `ComputeCapability` (TensorRT-RTX): the enum value is the SM number (`kSM89 = 89`).
pub const COMPUTE_CAPABILITIES_RTX: &[i32] = &[75, 80, 86, 89, 120, 121];

/// `ExecutionContextAllocationStrategy::kSTATIC`.
pub const ALLOCATION_STATIC: i32 = 0;

/// Vtable slots and enum values of one library version (generated; see `scripts/trt_slots/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slots {
    /// `NV_TENSORRT_VERSION` of the headers the table came from.
    pub header_version: i32,
    /// `NV_ONNX_PARSER_VERSION`, the version argument of `createNvOnnxParser_INTERNAL`.
    pub parser_version: i32,
    pub builder_create_builder_config: usize,
    pub builder_create_network_v2: usize,
    pub builder_create_optimization_profile: usize,
    pub builder_build_serialized_network: usize,
    pub builder_set_max_threads: usize,
    pub config_add_optimization_profile: usize,
    pub config_create_timing_cache: usize,
    pub config_set_timing_cache: usize,
    pub config_get_timing_cache: usize,
    pub config_set_memory_pool_limit: usize,
    pub config_set_builder_optimization_level: usize,
    pub config_set_progress_monitor: usize,
    pub config_set_flag: usize,
    /// TensorRT-RTX only: ahead-of-time targets.
    pub config_set_nb_compute_capabilities: Option<usize>,
    pub config_set_compute_capability: Option<usize>,
    pub network_get_nb_layers: usize,
    pub network_get_nb_inputs: usize,
    pub network_get_input: usize,
    pub network_get_nb_outputs: usize,
    pub network_get_output: usize,
    pub tensor_get_name: usize,
    pub tensor_get_dimensions: usize,
    pub tensor_get_type: usize,
    pub tensor_is_shape_tensor: usize,
    pub profile_set_dimensions: usize,
    pub profile_is_valid: usize,
    pub host_memory_data: usize,
    pub host_memory_size: usize,
    pub timing_cache_serialize: usize,
    pub runtime_deserialize_cuda_engine: usize,
    pub engine_get_nb_io_tensors: usize,
    pub engine_get_io_tensor_name: usize,
    pub engine_get_tensor_shape: usize,
    pub engine_get_tensor_data_type: usize,
    pub engine_get_tensor_io_mode: usize,
    pub engine_get_nb_optimization_profiles: usize,
    pub engine_get_profile_shape: usize,
    pub engine_create_execution_context: usize,
    pub context_set_optimization_profile_async: usize,
    pub context_set_input_shape: usize,
    pub context_get_tensor_shape: usize,
    pub context_set_tensor_address: usize,
    pub context_enqueue_v3: usize,
    pub parser_parse_from_file: usize,
    pub parser_get_nb_errors: usize,
    pub parser_get_error: usize,
    pub parser_clear_errors: usize,
    pub parser_error_code: usize,
    pub parser_error_desc: usize,
    pub parser_error_node: usize,
    pub parser_error_node_name: usize,
    pub parser_error_node_operator: usize,
    pub logger_log: usize,
    /// ILogger derives from IVersionedInterface in TensorRT-RTX and TensorRT 11 only.
    pub logger_get_interface_info: Option<usize>,
    pub logger_get_api_language: Option<usize>,
    pub progress_phase_start: usize,
    pub progress_step_complete: usize,
    pub progress_phase_finish: usize,
    pub progress_get_interface_info: usize,
    pub progress_get_api_language: usize,
    pub dtype_float: i32,
    pub dtype_half: i32,
    pub dtype_int8: i32,
    pub dtype_int32: i32,
    pub dtype_bool: i32,
    pub dtype_uint8: i32,
    pub dtype_fp8: i32,
    pub dtype_bf16: i32,
    pub dtype_int64: i32,
    pub dtype_int4: i32,
    pub io_mode_input: i32,
    pub io_mode_output: i32,
    pub pool_workspace: i32,
    /// `NetworkDefinitionCreationFlags` for a strongly typed network (0 where that is the only kind).
    pub network_flags: u32,
    /// First of the two destructor slots of `nvonnxparser::IParser`.
    pub parser_dtor: usize,
    /// First destructor slot and vtable length of the interfaces trtforge implements.
    pub logger_dtor: usize,
    pub logger_vtable_len: usize,
    pub progress_dtor: usize,
    pub progress_vtable_len: usize,
}

/// Which family a library belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// TensorRT-RTX (`libtensorrt_rtx.so.1`): ahead-of-time builds for chosen compute capabilities.
    Rtx,
    /// Full TensorRT (`libnvinfer.so.*`).
    TensorRt,
}

impl Flavour {
    pub fn as_str(self) -> &'static str {
        match self {
            Flavour::Rtx => "tensorrt-rtx",
            Flavour::TensorRt => "tensorrt",
        }
    }
}

/// A supported library family and version range, with its slot table.
pub struct Supported {
    pub flavour: Flavour,
    pub major: i32,
    pub minor: Option<i32>,
    pub label: &'static str,
    pub slots: &'static Slots,
}

/// Every version trtforge has a slot table for. TensorRT 10.0–10.16 share one table: the core
/// slots were checked identical for every 10.x header set and the parser's for 10.0, 10.1 and
/// 10.14–10.16 (scripts/trt_slots/README.md).
pub static SUPPORTED: &[Supported] = &[
    Supported {
        flavour: Flavour::Rtx,
        major: 1,
        minor: Some(7),
        label: "TensorRT-RTX 1.7",
        slots: &slots_rtx_1_7::SLOTS,
    },
    Supported {
        flavour: Flavour::TensorRt,
        major: 10,
        minor: None,
        label: "TensorRT 10.x",
        slots: &slots_trt_10::SLOTS,
    },
];

/// The list for error messages: "TensorRT-RTX 1.7, TensorRT 10.x".
pub fn supported_list() -> String {
    SUPPORTED.iter().map(|s| s.label).collect::<Vec<_>>().join(", ")
}

/// Splits `getInferLibVersion()`: `major * 10000 + minor * 100 + patch` for both families.
pub fn split_version(v: i32) -> (i32, i32, i32) {
    (v / 10000, (v / 100) % 100, v % 100)
}

/// The table for a library, or None for an unsupported version.
pub fn slots_for(flavour: Flavour, version: i32) -> Option<&'static Supported> {
    let (major, minor, _) = split_version(version);
    SUPPORTED.iter().find(|s| s.flavour == flavour && s.major == major && s.minor.is_none_or(|m| m == minor))
}

// C entry points of the libraries.
pub type GetInferLibVersion = unsafe extern "C" fn() -> i32;
pub type CreateInferBuilder = unsafe extern "C" fn(logger: *mut c_void, version: i32) -> *mut c_void;
pub type CreateInferRuntime = unsafe extern "C" fn(logger: *mut c_void, version: i32) -> *mut c_void;
pub type CreateNvOnnxParser =
    unsafe extern "C" fn(network: *mut c_void, logger: *mut c_void, version: i32) -> *mut c_void;

/// The function pointer in `slot` of the vtable of the C++ object at `obj`.
///
/// # Safety
/// `obj` must point to a live C++ object with a vtable of more than `slot` entries, and `F` must
/// be the `unsafe extern "C" fn` type matching that method's signature (`this` first).
pub unsafe fn vfn<F: Copy>(obj: *const c_void, slot: usize) -> F {
    debug_assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*const c_void>());
    // SAFETY: the caller guarantees obj is a C++ object; its first word is the vtable pointer.
    let vt = unsafe { *(obj as *const *const *const c_void) };
    // SAFETY: the caller guarantees the vtable has this slot.
    let f = unsafe { *vt.add(slot) };
    // SAFETY: F is a function-pointer type of pointer size, as the caller guarantees.
    unsafe { std::mem::transmute_copy::<*const c_void, F>(&f) }
}

/// The `mImpl` (`apiv::V*` object) of a public TensorRT class instance.
///
/// # Safety
/// `obj` must point to a live public TensorRT interface object (16 bytes: vptr, mImpl).
pub unsafe fn impl_of(obj: *const c_void) -> *mut c_void {
    // SAFETY: guaranteed by the caller: mImpl is the second word.
    unsafe { *(obj as *const *mut c_void).add(1) }
}

/// Deletes a public TensorRT object through its deleting destructor (its vtable slot 1).
///
/// # Safety
/// `obj` must be a live public TensorRT object owned by the caller; it is freed.
pub unsafe fn delete_public(obj: *mut c_void) {
    if obj.is_null() {
        return;
    }
    // SAFETY: public classes have [0] complete and [1] deleting destructor.
    let f: unsafe extern "C" fn(*mut c_void) = unsafe { vfn(obj, 1) };
    // SAFETY: the caller owns obj.
    unsafe { f(obj) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_is_72_bytes() {
        assert_eq!(std::mem::size_of::<Dims>(), 72);
        assert_eq!(std::mem::size_of::<InterfaceInfo>(), 16);
    }

    #[test]
    fn tables_are_found_by_version() {
        assert_eq!(slots_for(Flavour::Rtx, 10701).unwrap().label, "TensorRT-RTX 1.7");
        assert_eq!(slots_for(Flavour::TensorRt, 101600).unwrap().label, "TensorRT 10.x");
        assert!(slots_for(Flavour::Rtx, 10600).is_none());
        assert!(slots_for(Flavour::TensorRt, 110100).is_none());
        // The slot values themselves are checked against the public headers, by regenerating the
        // tables from them, in tests/trt_slots.rs (not here, where they could only be compared
        // with copies of themselves).
    }
}
