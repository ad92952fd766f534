//! GPU errors: the host's error kinds and messages.

use std::fmt;

use super::bindings::netmind::gpu::compute as wit;

/// Why a GPU call failed, mirroring the WIT variant `netmind:gpu/compute.error`: the kind of failure and
/// the host's message, which says what was wrong and how to fix it.
///
/// [`Display`](fmt::Display) gives `<kind>: <message>`, e.g.
/// `invalid-shader: shader.wgsl:3:5: expected ';', found '}'`; [`Error::kind`] gives the kind alone.
/// It converts into [`crate::Error`] (displayed with a `gpu ` prefix), so `?` works inside
/// [`crate::run`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// This host has no GPU adapter, GPU use is turned off for the job, or the code does not run inside
    /// a NetMind host at all (a native build).
    NoAdapter(String),
    /// The WGSL did not parse or validate.
    InvalidShader(String),
    /// Something the interface does not offer: a vertex or fragment entry point, textures, samplers,
    /// pipeline overrides.
    Unsupported(String),
    /// The bindings of a dispatch do not match what the pipeline's entry point uses.
    BindingMismatch(String),
    /// An offset or size outside a buffer, or not a multiple of 4.
    OutOfRange(String),
    /// A per-job quota (GPU memory held, buffers, pipelines, dispatches) would be exceeded.
    QuotaExceeded(String),
    /// A device limit (workgroup size, workgroups per dimension, buffer size) would be exceeded.
    LimitExceeded(String),
    /// A buffer is bound writable and also bound elsewhere in the same dispatch.
    Conflict(String),
    /// The job's GPU time budget, or its wall time, ran out while the GPU was working. The job's GPU
    /// context is gone: every later call fails the same way.
    Timeout(String),
    /// The GPU device was lost; every later call fails the same way.
    DeviceLost(String),
    /// The host failed in a way the job did not cause (or answered something the SDK did not expect).
    Internal(String),
}

impl Error {
    /// The kind's name in the WIT file, e.g. `"invalid-shader"`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::NoAdapter(_) => "no-adapter",
            Self::InvalidShader(_) => "invalid-shader",
            Self::Unsupported(_) => "unsupported",
            Self::BindingMismatch(_) => "binding-mismatch",
            Self::OutOfRange(_) => "out-of-range",
            Self::QuotaExceeded(_) => "quota-exceeded",
            Self::LimitExceeded(_) => "limit-exceeded",
            Self::Conflict(_) => "conflict",
            Self::Timeout(_) => "timeout",
            Self::DeviceLost(_) => "device-lost",
            Self::Internal(_) => "internal",
        }
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            Self::NoAdapter(m)
            | Self::InvalidShader(m)
            | Self::Unsupported(m)
            | Self::BindingMismatch(m)
            | Self::OutOfRange(m)
            | Self::QuotaExceeded(m)
            | Self::LimitExceeded(m)
            | Self::Conflict(m)
            | Self::Timeout(m)
            | Self::DeviceLost(m)
            | Self::Internal(m) => m,
        }
    }

    /// Whether the job's GPU context is gone ([`Timeout`](Self::Timeout) or
    /// [`DeviceLost`](Self::DeviceLost)): every later GPU call will fail the same way.
    pub const fn is_fatal(&self) -> bool {
        matches!(self, Self::Timeout(_) | Self::DeviceLost(_))
    }

    /// The error a native (non-wasm) build gets from every GPU call.
    pub(crate) fn not_in_host() -> Self {
        Self::NoAdapter("GPU calls only work inside a NetMind host".into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind(), self.message())
    }
}

impl std::error::Error for Error {}

impl From<wit::Error> for Error {
    fn from(error: wit::Error) -> Self {
        match error {
            wit::Error::NoAdapter(m) => Self::NoAdapter(m),
            wit::Error::InvalidShader(m) => Self::InvalidShader(m),
            wit::Error::Unsupported(m) => Self::Unsupported(m),
            wit::Error::BindingMismatch(m) => Self::BindingMismatch(m),
            wit::Error::OutOfRange(m) => Self::OutOfRange(m),
            wit::Error::QuotaExceeded(m) => Self::QuotaExceeded(m),
            wit::Error::LimitExceeded(m) => Self::LimitExceeded(m),
            wit::Error::Conflict(m) => Self::Conflict(m),
            wit::Error::Timeout(m) => Self::Timeout(m),
            wit::Error::DeviceLost(m) => Self::DeviceLost(m),
            wit::Error::Internal(m) => Self::Internal(m),
        }
    }
}

/// `Result<T, gpu::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_kind_then_message() {
        let e = Error::InvalidShader("line 3: expected `;`".into());
        assert_eq!(e.to_string(), "invalid-shader: line 3: expected `;`");
        assert_eq!(e.kind(), "invalid-shader");
        assert_eq!(e.message(), "line 3: expected `;`");
        assert!(!e.is_fatal());
        assert!(Error::Timeout("t".into()).is_fatal());
        assert!(Error::DeviceLost("d".into()).is_fatal());
    }

    #[test]
    fn every_wit_case_maps_to_its_name() {
        let m = || "m".to_owned();
        let cases = [
            (wit::Error::NoAdapter(m()), "no-adapter"),
            (wit::Error::InvalidShader(m()), "invalid-shader"),
            (wit::Error::Unsupported(m()), "unsupported"),
            (wit::Error::BindingMismatch(m()), "binding-mismatch"),
            (wit::Error::OutOfRange(m()), "out-of-range"),
            (wit::Error::QuotaExceeded(m()), "quota-exceeded"),
            (wit::Error::LimitExceeded(m()), "limit-exceeded"),
            (wit::Error::Conflict(m()), "conflict"),
            (wit::Error::Timeout(m()), "timeout"),
            (wit::Error::DeviceLost(m()), "device-lost"),
            (wit::Error::Internal(m()), "internal"),
        ];
        for (wit, name) in cases {
            let e = Error::from(wit);
            assert_eq!(e.kind(), name);
            assert_eq!(e.to_string(), format!("{name}: m"));
        }
    }
}
