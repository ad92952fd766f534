//! ML inference for jobs through `wasi-nn` (`wasi:nn@0.2.0-rc-2024-10-28`, `host/wit/wasi-nn.wit`).
//!
//! A job hands the host a model (ONNX bytes, or the name of a model the host
//! operator registered) and tensors; the host runs the model natively on one of
//! its [`Backend`]s and hands the outputs back. The job's own code stays in the
//! sandbox; the model runs at native speed.
//!
//! Everything a job does here is bounded ([`NnLimits`]): model and tensor sizes,
//! the number of live tensors, inference time per call and per job, and the
//! host memory its graphs and tensors hold, which counts against the job's
//! memory limit. Errors reach the guest as `wasi-nn` error codes with a message
//! that says what was wrong ([`NnError`]).
//!
//! Backends: [`tract`](TractBackend) (pure Rust, always present) and, with the
//! `onnxruntime` feature, ONNX Runtime loaded at run time from a library the
//! operator names ([`OrtBackend`]).

mod backend;
pub(crate) mod job;
#[cfg(feature = "onnxruntime")]
mod ort;
mod registry;
mod tensor;
mod tract;
pub(crate) mod wit;
pub(crate) mod witx;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use backend::{Backend, BackendInfo, IoSpec, Model, Session};
#[cfg(feature = "onnxruntime")]
pub use ort::{ORT_DYLIB_ENV, OrtBackend, OrtStatus};
pub use registry::ModelUse;
pub use tensor::{MAX_RANK, Tensor, TensorType};
pub use tract::TractBackend;

/// A model format (`wasi:nn/graph.graph-encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Encoding {
    /// ONNX protobuf.
    Onnx,
    /// OpenVINO IR.
    Openvino,
    /// TensorFlow.
    Tensorflow,
    /// PyTorch.
    Pytorch,
    /// TensorFlow Lite.
    Tensorflowlite,
    /// GGML.
    Ggml,
    /// Let the host guess.
    Autodetect,
}

impl Encoding {
    /// The name used in manifests and capabilities, e.g. `onnx`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Onnx => "onnx",
            Self::Openvino => "openvino",
            Self::Tensorflow => "tensorflow",
            Self::Pytorch => "pytorch",
            Self::Tensorflowlite => "tensorflowlite",
            Self::Ggml => "ggml",
            Self::Autodetect => "autodetect",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a model runs (`wasi:nn/graph.execution-target`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// The CPU.
    Cpu,
    /// A GPU.
    Gpu,
    /// A TPU or other accelerator.
    Tpu,
}

impl Target {
    /// `cpu`, `gpu` or `tpu`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Gpu => "gpu",
            Self::Tpu => "tpu",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `wasi-nn` error codes (`wasi:nn/errors.error-code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The job passed an invalid argument (bad model bytes, a tensor of the wrong shape or type...).
    InvalidArgument,
    /// No backend of this host serves the encoding.
    InvalidEncoding,
    /// Inference ran past its time limit.
    Timeout,
    /// The backend failed while running the model.
    RuntimeError,
    /// The backend cannot do this (an unsupported target, operator or element type).
    UnsupportedOperation,
    /// A model or tensor is over a limit.
    TooLarge,
    /// No model is registered under that name.
    NotFound,
    /// Not allowed.
    Security,
    /// Anything else.
    Unknown,
}

impl ErrorCode {
    /// The WIT name, e.g. `invalid-argument`.
    pub fn as_str(self) -> &'static str {
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

/// A `wasi-nn` error: a code and a message for the job's author.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct NnError {
    /// The code the guest sees.
    pub code: ErrorCode,
    /// What went wrong and, where it helps, how to fix it.
    pub message: String,
}

impl NnError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    pub(crate) fn runtime(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::RuntimeError, message)
    }
}

/// What one job may do through `wasi-nn`. Host memory held by a job's
/// graphs and tensors also counts against its [`crate::JobLimits::memory_bytes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NnLimits {
    /// Largest model a job may load from bytes.
    pub max_model_bytes: u64,
    /// Largest tensor, input or output.
    pub max_tensor_bytes: u64,
    /// Tensors a job may hold at once.
    pub max_tensors: u32,
    /// Graphs a job may hold at once.
    pub max_graphs: u32,
    /// Execution contexts a job may hold at once (each holds backend state,
    /// and with ONNX Runtime a watchdog thread).
    pub max_contexts: u32,
    /// Longest single `compute` call.
    pub call_timeout: Duration,
    /// Inference time a job may use in all (load and compute together).
    pub job_time: Duration,
}

impl Default for NnLimits {
    fn default() -> Self {
        Self {
            max_model_bytes: 512 << 20,
            max_tensor_bytes: 256 << 20,
            max_tensors: 256,
            max_graphs: 8,
            max_contexts: 16,
            call_timeout: Duration::from_secs(60),
            job_time: Duration::from_secs(600),
        }
    }
}

/// The host's `wasi-nn` service: its backends, in order of preference, the
/// models its operator registered, and the limits jobs are held to.
///
/// Shared by every job of a [`crate::Runtime`].
pub struct NnHost {
    backends: Vec<Arc<dyn Backend>>,
    registry: registry::Registry,
    limits: NnLimits,
}

impl fmt::Debug for NnHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NnHost")
            .field("backends", &self.capabilities())
            .field("models", &self.registered())
            .field("limits", &self.limits)
            .finish()
    }
}

impl Default for NnHost {
    /// tract only, default limits, no registered models.
    fn default() -> Self {
        Self::new(vec![Arc::new(TractBackend::default())], NnLimits::default())
    }
}

impl NnHost {
    /// A service over `backends`, the first serving an encoding and target being used.
    pub fn new(backends: Vec<Arc<dyn Backend>>, limits: NnLimits) -> Self {
        Self {
            backends,
            registry: registry::Registry::default(),
            limits,
        }
    }

    /// The limits jobs are held to.
    pub fn limits(&self) -> &NnLimits {
        &self.limits
    }

    /// What each backend serves, for the host's capabilities and offers.
    pub fn capabilities(&self) -> Vec<BackendInfo> {
        self.backends.iter().map(|b| b.info()).collect()
    }

    /// The encodings some backend serves, e.g. `["onnx"]`.
    pub fn encodings(&self) -> Vec<Encoding> {
        let mut all: Vec<Encoding> = self
            .backends
            .iter()
            .flat_map(|b| b.info().encodings)
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// The backend that serves `encoding` on `target`, or the error a job gets.
    pub fn backend_for(
        &self,
        encoding: Encoding,
        target: Target,
    ) -> Result<&Arc<dyn Backend>, NnError> {
        let serving: Vec<&Arc<dyn Backend>> = self
            .backends
            .iter()
            .filter(|b| b.info().encodings.contains(&encoding))
            .collect();
        if serving.is_empty() {
            let have: Vec<&str> = self.encodings().iter().map(|e| e.as_str()).collect();
            return Err(NnError::new(
                ErrorCode::InvalidEncoding,
                format!(
                    "this host has no backend for {encoding} models; it serves: {}",
                    if have.is_empty() {
                        "none".to_string()
                    } else {
                        have.join(", ")
                    }
                ),
            ));
        }
        serving
            .iter()
            .find(|b| b.info().targets.contains(&target))
            .copied()
            .ok_or_else(|| {
                let targets: Vec<String> = serving
                    .iter()
                    .flat_map(|b| b.info().targets)
                    .map(|t| t.to_string())
                    .collect();
                NnError::new(
                    ErrorCode::UnsupportedOperation,
                    format!(
                        "this host cannot run {encoding} models on the {target}; targets available: {}",
                        targets.join(", ")
                    ),
                )
            })
    }

    /// Loads a model once and shares it with every job that asks for it by
    /// `name` (`wasi:nn/graph.load-by-name`). Replaces a model of the same name.
    pub fn register(
        &self,
        name: &str,
        model: &[u8],
        encoding: Encoding,
        target: Target,
    ) -> Result<ModelUse, NnError> {
        let backend = self.backend_for(encoding, target)?;
        self.registry.register(name, model, backend, target)
    }

    /// The registered models.
    pub fn registered(&self) -> Vec<ModelUse> {
        self.registry.list()
    }
}
