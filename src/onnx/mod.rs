//! ONNX export of the Llama graph.
pub mod export;
pub mod trt_attention;

/// Types generated from proto/onnx.proto by build.rs.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}
