//! The error type of the sandbox runtime.

use std::path::PathBuf;

/// Why the sandbox could not load or start a job.
///
/// A job that starts and then fails (trap, limit, non-zero exit) is not an
/// error of the runtime: it is reported as a [`crate::Termination`] in the
/// [`crate::RunReport`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a WebAssembly module or component.
    #[error("not WebAssembly: {0}")]
    NotWasm(String),
    /// The module or component failed to compile or validate.
    #[error("invalid WebAssembly: {0:#}")]
    Compile(wasmtime::Error),
    /// The job imports something the sandbox does not provide.
    #[error("the job imports something NetMind hosts do not provide: {0:#}")]
    UnsupportedImport(wasmtime::Error),
    /// The job does not export a WASI command entry point.
    #[error("the job is not a WASI command (it must export `wasi:cli/run` or `_start`): {0:#}")]
    NotACommand(wasmtime::Error),
    /// A requested limit is outside what this host allows.
    #[error("{what} of {requested} exceeds this host's maximum of {maximum}")]
    LimitTooLarge {
        /// Which limit.
        what: &'static str,
        /// The requested value, human readable.
        requested: String,
        /// The host maximum, human readable.
        maximum: String,
    },
    /// A directory given for `/input` or `/output` cannot be used.
    #[error("{role} directory {}: {reason}", path.display())]
    BadDirectory {
        /// `input` or `output`.
        role: &'static str,
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The wasmtime engine could not be configured.
    #[error("cannot set up the sandbox engine: {0:#}")]
    Engine(wasmtime::Error),
    /// Anything else wasmtime reports while setting up a run.
    #[error(transparent)]
    Wasmtime(wasmtime::Error),
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
