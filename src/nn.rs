//! The wasi-nn options shared by `netmind run` and `netmind host`: which
//! backend runs models, where ONNX Runtime is, and which models are registered.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytesize::ByteSize;
use clap::{Args, ValueEnum};
use netmind_host::nn::{Backend, Encoding, NnHost, NnLimits, Target, TractBackend};

/// Which engine runs the models jobs hand to wasi-nn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum BackendChoice {
    /// ONNX Runtime when its library is found (`--onnxruntime`, `ORT_DYLIB_PATH`, or
    /// the `onnxruntime` Python package) and loads, else tract.
    Auto,
    /// tract: pure Rust, always available.
    Tract,
    /// ONNX Runtime only; fails at start-up when its library cannot be loaded.
    Onnxruntime,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct NnArgs {
    /// The wasi-nn backend for ONNX models.
    #[arg(long, value_enum, default_value = "auto", env = "NETMIND_NN_BACKEND")]
    nn_backend: BackendChoice,
    /// ONNX Runtime's shared library, e.g. the `capi/libonnxruntime.so*` inside the
    /// PyPI `onnxruntime` wheel (`python3 scripts/onnxruntime-lib.py` prints it).
    #[arg(long, env = "ORT_DYLIB_PATH", value_name = "LIBONNXRUNTIME")]
    onnxruntime: Option<PathBuf>,
    /// Threads each ONNX Runtime inference may use.
    #[arg(long, default_value_t = 1)]
    nn_threads: usize,
    /// Register a model that jobs load with `load-by-name`, as NAME=FILE.onnx
    /// (repeatable). It is loaded once and shared by every job.
    #[arg(long = "model", value_name = "NAME=FILE", value_parser = parse_model)]
    models: Vec<(String, PathBuf)>,
    /// Largest model a job may load from its own bytes.
    #[arg(long, default_value = "512MiB")]
    max_model_size: ByteSize,
    /// Longest single inference call.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    nn_call_timeout: Duration,
}

fn parse_model(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!(
            "`{s}` is not NAME=FILE (e.g. digits=samples/digits/assets/digits.onnx)"
        )),
    }
}

impl NnArgs {
    /// Builds the wasi-nn service, loading ONNX Runtime and the registered models.
    pub(crate) fn build(&self) -> Result<Arc<NnHost>> {
        let mut backends: Vec<Arc<dyn Backend>> = Vec::new();
        match self.nn_backend {
            BackendChoice::Tract => {}
            BackendChoice::Onnxruntime => backends.push(self.ort()?),
            BackendChoice::Auto => {
                if self.library().is_some() {
                    match self.ort() {
                        Ok(b) => backends.push(b),
                        Err(e) => {
                            tracing::warn!(target: "host::nn", error = %format!("{e:#}"), "ONNX Runtime unavailable; using tract")
                        }
                    }
                }
            }
        }
        if self.nn_backend != BackendChoice::Onnxruntime {
            backends.push(Arc::new(TractBackend::default()));
        }
        let limits = NnLimits {
            max_model_bytes: self.max_model_size.as_u64(),
            call_timeout: self.nn_call_timeout,
            ..NnLimits::default()
        };
        let host = NnHost::new(backends, limits);
        for (name, path) in &self.models {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read model `{name}` from {}", path.display()))?;
            let used = host
                .register(name, &bytes, Encoding::Onnx, Target::Cpu)
                .with_context(|| format!("cannot register model `{name}` ({})", path.display()))?;
            tracing::info!(target: "host::nn", name, sha256 = %used.sha256, backend = %used.backend, load_us = used.load_us, "model registered");
        }
        Ok(Arc::new(host))
    }

    #[cfg(feature = "onnxruntime")]
    fn library(&self) -> Option<PathBuf> {
        self.onnxruntime
            .clone()
            .or_else(netmind_host::nn::OrtBackend::discover)
    }

    #[cfg(not(feature = "onnxruntime"))]
    fn library(&self) -> Option<PathBuf> {
        None
    }

    #[cfg(feature = "onnxruntime")]
    fn ort(&self) -> Result<Arc<dyn Backend>> {
        let backend =
            netmind_host::nn::OrtBackend::load(self.library().as_deref(), self.nn_threads)
                .map_err(anyhow::Error::msg)?;
        tracing::info!(target: "host::nn", path = %backend.status().path.display(), version = %backend.status().version, "ONNX Runtime loaded");
        Ok(Arc::new(backend))
    }

    #[cfg(not(feature = "onnxruntime"))]
    fn ort(&self) -> Result<Arc<dyn Backend>> {
        bail!(
            "this netmind was built without the `onnxruntime` feature; rebuild with it or use --nn-backend tract"
        )
    }
}

/// Fails unless `host` serves every encoding a manifest asks for.
pub(crate) fn check_encodings(host: &NnHost, wanted: &[String]) -> Result<()> {
    let have: Vec<&str> = host.encodings().iter().map(|e| e.as_str()).collect();
    for enc in wanted {
        if !have.contains(&enc.as_str()) {
            bail!(
                "the job needs wasi-nn `{enc}` models, which this host cannot run (it serves: {})",
                have.join(", ")
            );
        }
    }
    Ok(())
}
