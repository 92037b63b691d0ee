//! trtforge: one Rust definition of the Llama graph, exported, quantized, compiled and benchmarked.
pub mod error;
pub mod model;

pub use error::{Error, Result};
