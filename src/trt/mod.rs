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
//! `unsafe` appears only under this module.
pub mod build;
pub mod callbacks;
pub mod library;
pub mod result;
pub mod runner;
pub mod safe;
pub mod sys;

pub use library::{find_and_load, TrtLibrary};
pub use safe::{
    Builder, BuilderConfig, Engine, ExecutionContext, HostMemory, NetworkDefinition, OnnxParser, OptimizationProfile,
    Runtime, TimingCache,
};

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
