//! wasi-nn errors: the host's error codes and messages, and tensors that do not add up.

use std::fmt;

use super::bindings::wasi::nn::errors as wit;

/// What went wrong in a wasi-nn call, mirroring the WIT enum `wasi:nn/errors.error-code`.
///
/// [`Display`](fmt::Display) gives the WIT name (`invalid-argument`, `not-found`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The caller passed an invalid argument (a bad tensor, an unknown input name, ...).
    InvalidArgument,
    /// The model's encoding is not one the host can load.
    InvalidEncoding,
    /// The operation timed out.
    Timeout,
    /// The backend failed while running the model.
    RuntimeError,
    /// The host does not support the operation (for example the `gpu` target on a CPU-only host).
    UnsupportedOperation,
    /// The model is too large.
    TooLarge,
    /// No model by that name is registered with the host.
    NotFound,
    /// The operation is insecure or needs a privilege the job lacks.
    Security,
    /// The operation failed for an unspecified reason.
    Unknown,
}

impl ErrorCode {
    /// The code's name in the WIT file, e.g. `"invalid-argument"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArgument => "invalid-argument",
            Self::InvalidEncoding => "invalid-encoding",
            Self::Timeout => "timeout",
            Self::RuntimeError => "runtime-error",
            Self::UnsupportedOperation => "unsupported-operation",
            Self::TooLarge => "too-large",
            Self::NotFound => "not-found",
            Self::Security => "security",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<wit::ErrorCode> for ErrorCode {
    fn from(code: wit::ErrorCode) -> Self {
        match code {
            wit::ErrorCode::InvalidArgument => Self::InvalidArgument,
            wit::ErrorCode::InvalidEncoding => Self::InvalidEncoding,
            wit::ErrorCode::Timeout => Self::Timeout,
            wit::ErrorCode::RuntimeError => Self::RuntimeError,
            wit::ErrorCode::UnsupportedOperation => Self::UnsupportedOperation,
            wit::ErrorCode::TooLarge => Self::TooLarge,
            wit::ErrorCode::NotFound => Self::NotFound,
            wit::ErrorCode::Security => Self::Security,
            wit::ErrorCode::Unknown => Self::Unknown,
        }
    }
}

/// A failed wasi-nn call (the host's error code and message), or a tensor whose shape, type and data do
/// not agree (code [`ErrorCode::InvalidArgument`], found before anything reaches the host).
///
/// Displays as `wasi-nn <code>: <message>`, e.g.
/// `wasi-nn not-found: no model named "mnist" is registered on this host`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("wasi-nn {code}: {message}")]
pub struct Error {
    /// What kind of failure it was.
    pub code: ErrorCode,
    /// The host's (or the SDK's) explanation, for the person who submitted the job.
    pub message: String,
}

impl Error {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// An [`ErrorCode::InvalidArgument`] error with `message`.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }
}

impl From<wit::Error> for Error {
    fn from(error: wit::Error) -> Self {
        Self {
            code: error.code().into(),
            message: error.data(),
        }
    }
}

/// `Result<T, nn::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_wit_code() {
        let error = Error::new(ErrorCode::NotFound, "no model named `x`");
        assert_eq!(error.to_string(), "wasi-nn not-found: no model named `x`");
        assert_eq!(
            Error::invalid_argument("bad").to_string(),
            "wasi-nn invalid-argument: bad"
        );
    }

    #[test]
    fn every_wit_code_maps_to_its_name() {
        let codes = [
            (wit::ErrorCode::InvalidArgument, "invalid-argument"),
            (wit::ErrorCode::InvalidEncoding, "invalid-encoding"),
            (wit::ErrorCode::Timeout, "timeout"),
            (wit::ErrorCode::RuntimeError, "runtime-error"),
            (
                wit::ErrorCode::UnsupportedOperation,
                "unsupported-operation",
            ),
            (wit::ErrorCode::TooLarge, "too-large"),
            (wit::ErrorCode::NotFound, "not-found"),
            (wit::ErrorCode::Security, "security"),
            (wit::ErrorCode::Unknown, "unknown"),
        ];
        for (wit, name) in codes {
            assert_eq!(ErrorCode::from(wit).as_str(), name);
        }
    }
}
