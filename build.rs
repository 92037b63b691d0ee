//! Generates the ONNX protobuf types from proto/onnx.proto (copied from the `onnx` PyPI package,
//! IR version 14) with a pure-Rust proto compiler: no protoc, no C++ toolchain.
fn main() {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    println!("cargo:rerun-if-changed=build.rs");
    let fds = match protox::compile(["proto/onnx.proto"], ["proto"]) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("failed to compile proto/onnx.proto: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = prost_build::Config::new().compile_fds(fds) {
        eprintln!("failed to generate ONNX types: {e}");
        std::process::exit(1);
    }
}
