//! TensorRT through a pure-Rust FFI, in three layers as in cudarc:
//! - [`sys`]: raw types, enum values, the libraries' C entry points and the per-version vtable
//!   slot tables (generated from the public headers by `scripts/trt_slots/gen.sh`);
//! - [`result`]: thin `unsafe fn`s, one per method, turning nulls and `false` into [`TrtError`];
//! - [`safe`]: owning handles (Builder, NetworkDefinition, OnnxParser, BuilderConfig,
//!   OptimizationProfile, HostMemory, TimingCache, Runtime, Engine, ExecutionContext) that free
//!   their objects in `Drop`.
//!
//! The libraries are loaded at run time ([`library`]); without them everything else in trtforge
//! works and TensorRT commands fail with an error saying how to install them.
//! `unsafe` appears only under this module. The library knows nothing of engine directories: the
//! build command is `crate::build`, running engines is `crate::backend::tensorrt`.
pub mod callbacks;
pub mod library;
pub mod result;
pub mod safe;
pub mod sys;

pub use library::{find_and_load, TrtLibrary};
pub use safe::{
    Builder, BuilderConfig, Engine, ExecutionContext, HostMemory, NetworkDefinition, OnnxParser, OptimizationProfile,
    Runtime, TimingCache,
};

/// Compute capabilities TensorRT-RTX 1.7 builds ahead of time for (and runs on).
pub const RTX_TARGETS: &[u32] = &[80, 86, 89, 120, 121];

/// Parses "sm89" / "89" / "8.9" into 89.
pub fn parse_target(t: &str) -> Result<u32, TrtError> {
    let s = t.trim().trim_start_matches("sm_").trim_start_matches("sm").replace('.', "");
    s.parse::<u32>()
        .map_err(|_| TrtError::Invalid(format!("build.target {t:?} is not a compute capability like \"sm89\"")))
}

/// Errors from loading or calling TensorRT. Messages carry what TensorRT logged.
#[derive(Debug, thiserror::Error)]
pub enum TrtError {
    /// No library found; the message says how to install one.
    #[error("{0}")]
    NotFound(String),
    /// dlopen/dlsym failed.
    #[error("{0}")]
    Load(String),
    /// A library version without a slot table.
    #[error("{0}")]
    UnsupportedVersion(String),
    /// The ONNX parser refused the model (errors with node names).
    #[error("{0}")]
    Parse(String),
    /// `buildSerializedNetwork` failed.
    #[error("{0}")]
    Build(String),
    /// A TensorRT call returned null/false.
    #[error("TensorRT: {0}")]
    Call(String),
    /// Deserializing or running an engine failed.
    #[error("{0}")]
    Runtime(String),
    /// The GPU (or its absence) cannot run the engine.
    #[error("{0}")]
    Gpu(String),
    /// A request that cannot be built (shapes, precision vs target, disk space...).
    #[error("{0}")]
    Invalid(String),
}

impl From<TrtError> for crate::Error {
    /// The crate's error keeps the message; a missing library or an unusable GPU becomes
    /// [`crate::Error::Unavailable`] (reports list it as "cannot run here", not as a failure).
    fn from(e: TrtError) -> Self {
        match e {
            TrtError::NotFound(_) | TrtError::Load(_) | TrtError::UnsupportedVersion(_) | TrtError::Gpu(_) => {
                crate::Error::Unavailable(e.to_string())
            }
            _ => crate::Error::TensorRt(e.to_string()),
        }
    }
}

/// Data type names as the manifest writes them.
pub fn dtype_name(s: &sys::Slots, v: i32) -> &'static str {
    match v {
        x if x == s.dtype_float => "float32",
        x if x == s.dtype_half => "float16",
        x if x == s.dtype_int8 => "int8",
        x if x == s.dtype_int32 => "int32",
        x if x == s.dtype_bool => "bool",
        x if x == s.dtype_uint8 => "uint8",
        x if x == s.dtype_fp8 => "fp8",
        x if x == s.dtype_bf16 => "bfloat16",
        x if x == s.dtype_int64 => "int64",
        x if x == s.dtype_int4 => "int4",
        _ => "unknown",
    }
}
