//! The SDK's error type.

use std::path::PathBuf;

/// Everything that can go wrong in an SDK call.
///
/// The [`Display`](std::fmt::Display) text is what [`run`](crate::run) prints as `error: <message>` and
/// stores in `/output/result.json`, so it is written for the person who submitted the job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A named input file is not in `/input`.
    #[error("input `{name}` not found in /input; pass it with `netmind run --input DIR`")]
    MissingInput {
        /// The name that was asked for, relative to `/input`.
        name: String,
    },
    /// A file system call on `path` failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path the call was about.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A value could not be serialized to or parsed from JSON.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// A wasi-nn call failed, or a tensor's shape, type and data did not agree.
    #[error(transparent)]
    Nn(#[from] crate::nn::Error),
    /// A GPU call failed; displayed as `gpu <kind>: <message>`.
    #[error("gpu {0}")]
    Gpu(#[from] crate::gpu::Error),
    /// Bytes meant to be a NumPy `.npy` file are not a usable one.
    #[error(transparent)]
    Npy(#[from] crate::npy::Error),
    /// The `.npy` file at `path` is not a usable one.
    #[error("{}: {source}", path.display())]
    NpyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: crate::npy::Error,
    },
    /// A named asset is not in `/assets`.
    #[error("asset `{name}` not found in /assets; put it in the bundle's assets/ directory")]
    MissingAsset {
        /// The name that was asked for, relative to `/assets`.
        name: String,
    },
    /// The job found its inputs or arguments unusable; the message says why.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// Builds an [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds an [`Error::Invalid`] with `message`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }
}

/// The SDK's result type: `Result<T, netmind_sdk::Error>` unless another error type is named.
pub type Result<T, E = Error> = std::result::Result<T, E>;
