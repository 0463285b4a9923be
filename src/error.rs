//! One error type for the crate. Every message says what is wrong and, where a person can act, what to do.

/// Everything that can go wrong, from a bad input file to a lost GPU device.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No adapter (GPU or software) could be found.
    #[error("no WebGPU adapter: {0}")]
    NoAdapter(String),
    /// The adapter refused to create a device.
    #[error("could not open the GPU device: {0}")]
    Device(String),
    /// A validation or out-of-memory error reported by the GPU layer.
    #[error("GPU error: {0}")]
    Gpu(String),
    /// The GPU device was lost (driver reset, tab in background, out of memory). Create the model again.
    #[error("the GPU device was lost: {0}; create the sampler again")]
    DeviceLost(String),
    /// A buffer the model needs is larger than the device allows.
    #[error("{what} needs {need} bytes in one binding, but this device allows {limit} ({limit_name}); use a smaller batch or resolution")]
    Limit { what: String, need: u64, limit: u64, limit_name: &'static str },
    /// A download failed (HTTP status, network error, server misbehaving).
    #[error("{url}: {msg}")]
    Download { url: String, msg: String },
    /// The server has no such file (HTTP 404): a wrong repository, revision or path.
    #[error("{url}: not found (HTTP 404); check the repository name, the revision and the path")]
    NotFound { url: String },
    /// The server refuses access (HTTP 401 or 403), as the Hub does for a gated or private repository.
    #[error("{url}: access refused (HTTP {status}); the repository is gated or private: accept its conditions on the Hub and use files you may download, or host them yourself")]
    Gated { url: String, status: u16 },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A weights file or index is malformed.
    #[error("{file}: {msg}")]
    Format { file: String, msg: String },
    /// A shard's bytes do not match the sha256 recorded in the index.
    #[error("{file}: sha256 mismatch (expected {expected}, the bytes have {actual}); the file is corrupt or was changed, fetch or convert it again")]
    Integrity { file: String, expected: String, actual: String },
    /// A tensor the model needs is not in the weights.
    #[error("tensor `{0}` is missing from the weights; is this the right model directory?")]
    MissingTensor(String),
    /// A tensor has the wrong shape for the model's config.
    #[error("tensor `{name}`: expected shape {expected:?}, found {found:?}")]
    Shape { name: String, expected: Vec<usize>, found: Vec<usize> },
    /// A model config that the kernels cannot run.
    #[error("unsupported config: {0}")]
    Config(String),
    /// An op was built with shapes or a kernel choice it does not run: a bug in a model graph, not in the input.
    #[error("{0} (an op was built with shapes it does not run: a bug in the model graph; please report it)")]
    Op(String),
    /// A bad value from the user (shape, range, NaN, unknown name).
    #[error("{0}")]
    Input(String),
    /// The caller cancelled the run.
    #[error("generation was cancelled")]
    Cancelled,
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().display().to_string(), source }
    }

    pub fn format(file: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Format { file: file.into(), msg: msg.into() }
    }

    pub fn input(msg: impl Into<String>) -> Self {
        Error::Input(msg.into())
    }
}
