//! ONNX protobuf types, generated from proto/onnx.proto by build.rs. The ONNX writer (`onnx`) and the
//! stored-weight reader (`engine_dir::weights`) both use them.
#![allow(clippy::all, missing_docs)]
include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
