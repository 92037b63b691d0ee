//! Engine directories: the YAML config that describes one ([`config`]), the `trtforge.json` manifest
//! that records what it holds ([`manifest`]), and reading its stored weights back ([`weights`]).
pub mod config;
pub mod manifest;
pub mod weights;

pub use config::EngineConfig;
pub use manifest::{Manifest, MANIFEST_FILE};
pub use weights::{load_engine_weights, load_quantized_weights, EngineWeights};
