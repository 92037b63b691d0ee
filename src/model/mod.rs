//! Model definition and loading: config, checkpoints, tokenizer, and the one Llama graph.
pub mod chat;
pub mod config;
pub mod ggml_quants;
pub mod gguf;
pub mod graph;
pub mod hf;
mod iq_grids;
pub mod load;
pub mod tensor;
pub mod tokenizer;
pub mod weights;

pub use config::LlamaConfig;
pub use tensor::Tensor;
pub use weights::{ModelWeights, Param};
