//! trtforge: one Rust definition of the Llama graph, exported, quantized, compiled and benchmarked.
pub mod backend;
pub mod bench;
pub mod cli;
pub mod config;
pub mod convert;
pub mod error;
pub mod eval;
pub mod generate;
pub mod manifest;
pub mod model;
pub mod onnx;
pub mod quant;
pub mod serve;
pub mod trt;

pub use error::{Error, Result};
