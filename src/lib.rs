//! trtforge: one Rust definition of the Llama graph, exported, quantized, compiled and benchmarked.
//!
//! Layers, lowest first; each module imports only from layers below it (tests/layering.rs checks,
//! README.md's layout section explains):
//! 0 `error` · 1 `util`, `proto` · 2 `model` · 3 `quant` · 4 `engine_dir` · 5 `onnx`, `trt` ·
//! 6 `backend` · 7 `generate` · 8 `eval` · 9 `convert`, `build`, `bench`, `serve` · 10 `cli`.
pub mod error;
pub mod proto;
pub mod util;

pub mod model;

pub mod quant;

pub mod engine_dir;

pub mod onnx;
pub mod trt;

pub mod backend;

pub mod generate;

pub mod eval;

pub mod bench;
pub mod build;
pub mod convert;
pub mod serve;

pub mod cli;

pub use error::{Error, Result};
