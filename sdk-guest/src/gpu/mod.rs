//! GPU compute through the host's GPU (`netmind:gpu/compute@0.1.0`): WGSL compute shaders run by the
//! host with wgpu.
//!
//! A job creates [`Buffer`]s in GPU memory, compiles [`Pipeline`]s from WGSL, and [`submit`]s lists of
//! [`Dispatch`]es; `submit` returns when the GPU is done, so the interface is synchronous from the job's
//! view. The host validates every shader (naga) before it reaches a driver and holds the job to quotas
//! ([`limits`]): buffer sizes, GPU memory held, pipelines, dispatches, workgroup sizes and counts, GPU
//! time. All GPU objects are freed when the job ends, however it ends. The job's manifest must ask for a
//! GPU:
//!
//! ```toml
//! [resources.gpu]
//! required = true
//! ```
//!
//! The steps:
//!
//! 1. [`Buffer::from_slice`] (or [`Buffer::zeroed`], [`Buffer::new`]) makes a buffer; sizes are in bytes
//!    and multiples of 4 (the typed constructors pad).
//! 2. [`Pipeline::new`] compiles one `@compute` entry point of a WGSL module; [`Pipeline::bindings`]
//!    says which `@group(g) @binding(b)` it uses, [`Pipeline::workgroup_size`] its `@workgroup_size`.
//! 3. [`Dispatch::new`] binds buffers to exactly those bindings ([`Dispatch::bind`] for group 0) and sets
//!    the workgroup counts; [`workgroups_for`] turns a number of items into a count.
//! 4. [`submit`] runs dispatches in order; [`Buffer::read`] reads results back.
//!
//! [`run`] does steps 2 to 4 for the common case of one dispatch with buffers bound at group 0 in order.
//!
//! After each dispatch the host hashes every buffer range the dispatch could write into a per-job
//! SHA-256 hash chain ([`usage`]`().hash_chain`, also returned by [`submit`]), which goes into the run's
//! receipt, so replicas of a job can be compared dispatch by dispatch: a job that wants replicas to agree
//! must write the same bytes (no data races, no results that depend on the order of floating-point
//! atomics).
//!
//! Every failure is an [`Error`] displayed as `<kind>: <message>` (`invalid-shader: ...`,
//! `quota-exceeded: ...`); it converts into [`crate::Error`], so `?` works inside [`crate::run`]. After
//! [`Error::Timeout`] or [`Error::DeviceLost`] the job's GPU is gone and every later call fails the same
//! way. Built natively (not for wasm), every call fails with [`Error::NoAdapter`], so job logic still
//! compiles and its CPU parts can be unit tested.
//!
//! # Example
//!
//! Add two arrays on the GPU:
//!
//! ```no_run
//! use std::process::ExitCode;
//!
//! use netmind_sdk::gpu::{self, Buffer};
//!
//! const ADD: &str = "
//!     @group(0) @binding(0) var<storage, read> a: array<f32>;
//!     @group(0) @binding(1) var<storage, read> b: array<f32>;
//!     @group(0) @binding(2) var<storage, read_write> sum: array<f32>;
//!
//!     @compute @workgroup_size(64)
//!     fn main(@builtin(global_invocation_id) id: vec3<u32>) {
//!         let i = id.x;
//!         if i < arrayLength(&sum) {
//!             sum[i] = a[i] + b[i];
//!         }
//!     }
//! ";
//!
//! fn main() -> ExitCode {
//!     netmind_sdk::run(|| {
//!         let n = 1000;
//!         let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
//!         let b = vec![0.5f32; n];
//!         let (a, b) = (Buffer::from_slice(&a)?, Buffer::from_slice(&b)?);
//!         let sum = Buffer::zeroed::<f32>(n)?;
//!         gpu::run(ADD, "main", &[&a, &b, &sum], (gpu::workgroups_for(n, 64), 1, 1))?;
//!         let sum: Vec<f32> = sum.read()?;
//!         println!("{} on {}", sum[999], gpu::adapter()?.name);
//!         Ok(sum[999])
//!     })
//! }
//! ```

use std::fmt::Write as _;

use serde::Serialize;

#[doc(hidden)]
#[allow(missing_docs, unreachable_pub, reason = "generated bindings")]
pub mod bindings;
mod buffer;
mod error;
mod pipeline;

pub use buffer::Buffer;
pub use error::{Error, Result};
pub use pipeline::{BindingInfo, BindingKind, Dispatch, Pipeline, run, submit};

use bindings::netmind::gpu::compute as wit;

/// The adapter (GPU) the job runs on, mirroring the WIT record `adapter-info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AdapterInfo {
    /// e.g. `NVIDIA GeForce RTX 4090` or `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub name: String,
    /// `vulkan`, `metal`, `dx12` or `gl`.
    pub backend: String,
    /// `discrete-gpu`, `integrated-gpu`, `virtual-gpu`, `cpu` or `other`.
    pub device_type: String,
    /// PCI vendor id.
    pub vendor: u32,
    /// PCI device id.
    pub device: u32,
    /// Driver name and version.
    pub driver: String,
    /// True for a software rasteriser (lavapipe, llvmpipe, WARP).
    pub is_software: bool,
}

impl From<wit::AdapterInfo> for AdapterInfo {
    fn from(info: wit::AdapterInfo) -> Self {
        Self {
            name: info.name,
            backend: info.backend,
            device_type: info.device_type,
            vendor: info.vendor,
            device: info.device,
            driver: info.driver,
            is_software: info.is_software,
        }
    }
}

/// What the job may do: the device's limits intersected with the job's quotas, mirroring the WIT record
/// `limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Limits {
    /// Largest single buffer, in bytes.
    pub max_buffer_size: u64,
    /// GPU memory the job may hold at once (buffers), in bytes.
    pub max_total_bytes: u64,
    /// Buffers alive at once.
    pub max_buffers: u32,
    /// Pipelines alive at once.
    pub max_pipelines: u32,
    /// Dispatches over the whole job.
    pub max_dispatches: u64,
    /// Dispatches in one [`submit`].
    pub max_dispatches_per_submit: u32,
    /// Largest workgroup size in x, y, z.
    pub max_workgroup_size: (u32, u32, u32),
    /// Largest product of the workgroup size.
    pub max_invocations_per_workgroup: u32,
    /// Largest workgroup count in each dimension of one dispatch.
    pub max_workgroups_per_dimension: u32,
    /// Largest storage binding, in bytes.
    pub max_storage_binding_size: u64,
    /// Largest uniform binding, in bytes.
    pub max_uniform_binding_size: u64,
    /// Binding offsets must be multiples of this.
    pub min_binding_offset_alignment: u32,
    /// Bind groups a pipeline may use.
    pub max_bind_groups: u32,
    /// GPU time the job may use, in milliseconds.
    pub gpu_time_budget_ms: u64,
    /// Largest WGSL source, in bytes.
    pub max_shader_bytes: u32,
}

impl From<wit::Limits> for Limits {
    fn from(l: wit::Limits) -> Self {
        Self {
            max_buffer_size: l.max_buffer_size,
            max_total_bytes: l.max_total_bytes,
            max_buffers: l.max_buffers,
            max_pipelines: l.max_pipelines,
            max_dispatches: l.max_dispatches,
            max_dispatches_per_submit: l.max_dispatches_per_submit,
            max_workgroup_size: l.max_workgroup_size,
            max_invocations_per_workgroup: l.max_invocations_per_workgroup,
            max_workgroups_per_dimension: l.max_workgroups_per_dimension,
            max_storage_binding_size: l.max_storage_binding_size,
            max_uniform_binding_size: l.max_uniform_binding_size,
            min_binding_offset_alignment: l.min_binding_offset_alignment,
            max_bind_groups: l.max_bind_groups,
            gpu_time_budget_ms: l.gpu_time_budget_ms,
            max_shader_bytes: l.max_shader_bytes,
        }
    }
}

/// What the job used so far, mirroring the WIT record `usage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct Usage {
    /// Dispatches run.
    pub dispatches: u64,
    /// Calls to [`submit`].
    pub submits: u64,
    /// Time the GPU worked for the job (submit to completion, host clock), in nanoseconds; 0 in
    /// deterministic mode (replicated jobs), where timing would make replicas' outputs differ.
    pub gpu_time_ns: u64,
    /// GPU memory held now, in bytes.
    pub bytes_held: u64,
    /// Most GPU memory held at once, in bytes.
    pub peak_bytes: u64,
    /// SHA-256 hash chain over every dispatch's written ranges; 32 zero bytes before the first dispatch.
    /// Serialized as 64 lowercase hex digits.
    #[serde(serialize_with = "serialize_hex")]
    pub hash_chain: [u8; 32],
}

impl Usage {
    /// [`hash_chain`](Self::hash_chain) as 64 lowercase hex digits.
    pub fn hash_chain_hex(&self) -> String {
        to_hex(&self.hash_chain)
    }

    /// [`gpu_time_ns`](Self::gpu_time_ns) in milliseconds.
    pub fn gpu_time_ms(&self) -> f64 {
        self.gpu_time_ns as f64 / 1e6
    }
}

/// The adapter the job runs on.
///
/// # Errors
///
/// [`Error::NoAdapter`] when the host has no GPU or the job's manifest did not ask for one.
pub fn adapter() -> Result<AdapterInfo> {
    in_host()?;
    Ok(wit::adapter()?.into())
}

/// What the job may do: buffer sizes, quotas, workgroup limits, GPU time.
///
/// # Errors
///
/// [`Error::NoAdapter`] when the host has no GPU or the job's manifest did not ask for one.
pub fn limits() -> Result<Limits> {
    in_host()?;
    Ok(wit::get_limits()?.into())
}

/// What the job used so far: dispatches, GPU time, memory, and the hash chain. All zero in a native
/// build.
pub fn usage() -> Usage {
    if in_host().is_err() {
        return Usage::default();
    }
    let usage = wit::get_usage();
    Usage {
        dispatches: usage.dispatches,
        submits: usage.submits,
        gpu_time_ns: usage.gpu_time_ns,
        bytes_held: usage.bytes_held,
        peak_bytes: usage.peak_bytes,
        // A host that breaks the interface's 32-byte promise gets zeros rather than a panic.
        hash_chain: hash32(&usage.hash_chain).unwrap_or_default(),
    }
}

/// The number of workgroups of `workgroup_size` invocations that cover `items` items: `items` divided by
/// `workgroup_size`, rounded up (saturating at `u32::MAX`, which the host then refuses as too many).
///
/// ```
/// assert_eq!(netmind_sdk::gpu::workgroups_for(1000, 64), 16);
/// assert_eq!(netmind_sdk::gpu::workgroups_for(1024, 64), 16);
/// assert_eq!(netmind_sdk::gpu::workgroups_for(0, 64), 0);
/// ```
///
/// # Panics
///
/// If `workgroup_size` is 0.
pub fn workgroups_for(items: usize, workgroup_size: u32) -> u32 {
    assert!(workgroup_size > 0, "a workgroup size of 0");
    let groups = (items as u64).div_ceil(u64::from(workgroup_size));
    u32::try_from(groups).unwrap_or(u32::MAX)
}

/// `bytes` as lowercase hex digits, e.g. for a hash from [`submit`] or [`Usage::hash_chain`].
pub fn to_hex(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        write!(hex, "{byte:02x}").expect("writing to a String cannot fail");
    }
    hex
}

fn serialize_hex<S: serde::Serializer>(
    hash: &[u8; 32],
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(&to_hex(hash))
}

/// A 32-byte hash from the host's `list<u8>`.
fn hash32(bytes: &[u8]) -> Result<[u8; 32]> {
    bytes.try_into().map_err(|_| {
        Error::Internal(format!(
            "the host returned a hash of {} bytes, not 32",
            bytes.len()
        ))
    })
}

/// `Ok` inside a wasm build (where a NetMind host provides the interface), [`Error::NoAdapter`] in a
/// native one, where the generated imports would only panic.
fn in_host() -> Result<()> {
    if cfg!(target_arch = "wasm32") {
        Ok(())
    } else {
        Err(Error::not_in_host())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workgroups_round_up() {
        assert_eq!(workgroups_for(1, 256), 1);
        assert_eq!(workgroups_for(256, 256), 1);
        assert_eq!(workgroups_for(257, 256), 2);
        assert_eq!(workgroups_for(usize::MAX, 1), u32::MAX);
    }

    #[test]
    fn hashes_are_32_bytes_and_print_as_hex() {
        assert_eq!(hash32(&[7; 32]).unwrap(), [7; 32]);
        let err = hash32(&[1, 2]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "internal: the host returned a hash of 2 bytes, not 32"
        );
        assert_eq!(to_hex(&[0, 0xab, 0x10]), "00ab10");
        let usage = Usage {
            hash_chain: [0xff; 32],
            ..Usage::default()
        };
        assert_eq!(usage.hash_chain_hex(), "ff".repeat(32));
        let json = serde_json::to_value(usage).unwrap();
        assert_eq!(json["hash_chain"], "ff".repeat(32));
    }

    #[test]
    #[cfg(not(target_arch = "wasm32"))]
    fn natively_there_is_no_adapter() {
        assert!(matches!(adapter(), Err(Error::NoAdapter(_))));
        assert!(matches!(limits(), Err(Error::NoAdapter(_))));
        assert_eq!(usage(), Usage::default());
        let err = crate::Error::from(adapter().unwrap_err());
        assert_eq!(
            err.to_string(),
            "gpu no-adapter: GPU calls only work inside a NetMind host"
        );
    }
}
