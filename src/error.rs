//! Typed errors for the library. The CLI wraps these with anyhow; nothing here panics on user input.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An OS-level failure on a named file.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file whose contents are malformed: bad magic, lengths past the end, absurd sizes...
    #[error("{}: {msg}", path.display())]
    Format { path: PathBuf, msg: String },
    /// A model configuration that is invalid or that we do not support.
    #[error("model config: {0}")]
    Config(String),
    /// A feature of a file or request that trtforge does not implement (dtype, quant type, ...).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A bad request from the user (empty prompt, context too long, bad flag value...).
    #[error("{0}")]
    Invalid(String),
    /// Tokenizer construction or use failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// TensorRT refused a model or failed while building or running it (the message carries what
    /// it logged). Converted from `trt::TrtError` at the library's boundary.
    #[error("{0}")]
    TensorRt(String),
    /// Something this run needs is not on this machine: a library (TensorRT, ONNX Runtime) or a GPU
    /// that can run the engine. Reports list it as "cannot run here", not as a failure.
    #[error("{0}")]
    Unavailable(String),
    /// A GPU runtime failure or a missing GPU/driver/CUDA library.
    #[error("GPU: {0}")]
    Gpu(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Format { path: path.into(), msg: msg.into() }
    }
}
