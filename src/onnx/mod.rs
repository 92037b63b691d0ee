//! ONNX export of the Llama graph: [`builder`] (nodes, initializers, external data), the two
//! attention forms ([`portable`]: opset 17 past/present concatenation; [`tensorrt`]: opset 24
//! in-place KV cache), and [`export`], which walks the graph and picks a form.
pub mod builder;
pub mod export;
pub mod ort_cpu;
pub mod portable;
pub mod tensorrt;
