//! GPU compute for jobs: WGSL compute shaders run through `wgpu` (`netmind:gpu/compute`, `host/wit/gpu.wit`).
//!
//! A job's GPU work never runs in the sandbox's process. The first GPU call of a job starts a **worker
//! process** (`netmind-gpu-worker`, or `netmind host gpu-worker`) that opens the adapter and creates a
//! device for that job alone; the sandbox sends it requests over a pipe and waits for each reply with a
//! deadline (the job's remaining GPU time and wall time). A shader that never finishes, a driver that
//! hangs or crashes, or a device that is lost costs the job its GPU context and nothing else: the
//! sandbox kills the worker, the job gets `timeout` or `device-lost`, and the host goes on. When the job
//! ends, however it ends, the worker is stopped, so every GPU object the job made is freed with it.
//!
//! In the worker, every shader is parsed and validated with naga before it reaches the driver; only
//! compute entry points with storage and uniform buffers are accepted; buffer sizes, GPU memory held,
//! pipelines, dispatches, workgroup sizes and counts are held to per-job quotas ([`GpuLimits`]); every
//! offset and range is checked before a wgpu call, and every wgpu call runs inside error scopes so a
//! mistake becomes an error for the job, never a panic. After each dispatch the bytes it could write
//! are hashed into a per-job hash chain ([`GpuUsage::hash_chain`]) that replicas compare.

mod client;
mod device;
pub mod probe;
pub mod proto;
mod shader;
pub(crate) mod wit;
pub mod worker;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub(crate) use client::JobGpu;
pub use proto::{AdapterDesc, Caps};

/// Why a GPU call failed (`netmind:gpu/compute.error`). The message says what was wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum GpuError {
    /// No adapter, or GPU use is off.
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// The WGSL did not parse or validate.
    #[error("invalid shader: {0}")]
    InvalidShader(String),
    /// Not something this interface offers.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Bindings do not match the entry point.
    #[error("binding mismatch: {0}")]
    BindingMismatch(String),
    /// A bad offset or size.
    #[error("out of range: {0}")]
    OutOfRange(String),
    /// A per-job quota.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// A device limit.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// A buffer bound writable and elsewhere in one dispatch.
    #[error("conflict: {0}")]
    Conflict(String),
    /// GPU time or wall time ran out.
    #[error("timeout: {0}")]
    Timeout(String),
    /// The device is gone.
    #[error("device lost: {0}")]
    DeviceLost(String),
    /// The host failed.
    #[error("internal error: {0}")]
    Internal(String),
}

/// How the sandbox starts a GPU worker: a program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCommand {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments (e.g. `["host", "gpu-worker"]` for the `netmind` CLI).
    pub args: Vec<String>,
    /// Extra environment for the worker (e.g. `VK_DRIVER_FILES` to pick Vulkan drivers); it also
    /// inherits the host's.
    pub env: Vec<(String, String)>,
}

impl WorkerCommand {
    /// `netmind-gpu-worker` next to the running executable, or one directory up (where cargo puts
    /// binaries for test executables in `deps/`).
    pub fn beside_current_exe() -> Option<Self> {
        let exe = std::env::current_exe().ok()?;
        let name = format!("netmind-gpu-worker{}", std::env::consts::EXE_SUFFIX);
        exe.ancestors()
            .skip(1)
            .take(2)
            .map(|dir| dir.join(&name))
            .find(|p| p.is_file())
            .map(|program| Self {
                program,
                args: Vec::new(),
                env: Vec::new(),
            })
    }
}

/// Whether jobs may use the GPU, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuConfig {
    /// `false`: every GPU call gets `no-adapter` ("GPU use is off on this host").
    pub enabled: bool,
    /// The adapter by index (as `netmind host gpu` lists them) or name substring; `None` picks the best.
    pub adapter: Option<String>,
    /// How to start a worker; `None` looks for `netmind-gpu-worker` beside the running executable.
    pub worker: Option<WorkerCommand>,
    /// How long a worker may take to open the adapter and create the device.
    pub init_timeout: Duration,
}

impl Default for GpuConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            adapter: None,
            worker: None,
            init_timeout: Duration::from_secs(30),
        }
    }
}

/// A job's GPU quotas. `memory` and `time` come from the manifest's `[resources.gpu]`; the rest are
/// host policy with defaults that fit real jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuLimits {
    /// GPU memory the job's buffers may hold at once.
    pub memory_bytes: u64,
    /// GPU time (submit to completion, host clock) over the whole job.
    pub time: Duration,
    /// Largest single buffer (also capped by the device).
    pub max_buffer_bytes: u64,
    /// Buffers alive at once.
    pub buffers: u32,
    /// Pipelines alive at once.
    pub pipelines: u32,
    /// Dispatches over the whole job.
    pub dispatches: u64,
    /// Dispatches in one submit.
    pub dispatches_per_submit: u32,
    /// Largest WGSL source.
    pub shader_bytes: u32,
    /// Invocations in one dispatch (workgroups × workgroup size).
    pub invocations_per_dispatch: u64,
}

impl Default for GpuLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 1 << 30,
            time: Duration::from_secs(60),
            max_buffer_bytes: 1 << 30,
            buffers: 256,
            pipelines: 64,
            dispatches: 1_000_000,
            dispatches_per_submit: 1024,
            shader_bytes: 1 << 20,
            invocations_per_dispatch: 1 << 36,
        }
    }
}

impl GpuLimits {
    pub(crate) fn quota(&self) -> proto::Quota {
        proto::Quota {
            max_total_bytes: self.memory_bytes,
            max_buffer_size: self.max_buffer_bytes.min(self.memory_bytes),
            max_buffers: self.buffers,
            max_pipelines: self.pipelines,
            max_dispatches: self.dispatches,
            max_dispatches_per_submit: self.dispatches_per_submit,
            max_shader_bytes: self.shader_bytes,
            max_invocations_per_dispatch: self.invocations_per_dispatch,
            gpu_time_ms: u64::try_from(self.time.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// What a job did on the GPU, for the run summary and the receipt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GpuUsage {
    /// The adapter, when the job used the GPU.
    pub adapter: Option<String>,
    /// Dispatches run.
    pub dispatches: u64,
    /// Submits run.
    pub submits: u64,
    /// GPU time: submit to completion, plus reads, writes and shader compilation (host clock).
    #[serde(serialize_with = "micros")]
    pub time: Duration,
    /// Most GPU memory held at once (buffers and staging).
    pub peak_bytes: u64,
    /// The hash chain over every dispatch's written ranges (hex), when there was a dispatch.
    pub hash_chain: Option<String>,
    /// Why the GPU context ended early (`timeout`, `device-lost`), if it did.
    pub failure: Option<String>,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl fmt::Display for GpuUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.adapter {
            None => f.write_str("not used"),
            Some(a) => write!(
                f,
                "{} dispatches in {} submits, {:.1?} on {a}, peak {}",
                self.dispatches,
                self.submits,
                self.time,
                crate::limits::bytes(self.peak_bytes)
            ),
        }
    }
}
