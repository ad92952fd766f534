//! [`Pipeline`]s, [`Dispatch`]es and [`submit`].

use std::fmt;

use serde::Serialize;

use super::bindings::netmind::gpu::compute as wit;
use super::{Buffer, Error, Result, in_host};

/// A compiled compute pipeline: one `@compute` entry point of a WGSL module. Dropping it frees it.
pub struct Pipeline {
    inner: wit::Pipeline,
}

impl Pipeline {
    /// Compiles `entry_point` of the WGSL module `wgsl`.
    ///
    /// The host parses and validates the module (naga) before it reaches a driver, and works out which
    /// bindings the entry point uses ([`bindings`](Self::bindings)).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidShader`] for WGSL that does not parse or validate (the message has the line and
    /// column), [`Error::Unsupported`] for an entry point that is not `@compute` or a module that uses
    /// textures, samplers or overrides, [`Error::LimitExceeded`] for a `@workgroup_size` beyond the
    /// device's, [`Error::QuotaExceeded`] when the job holds too many pipelines.
    pub fn new(wgsl: &str, entry_point: &str) -> Result<Self> {
        in_host()?;
        let inner = wit::Pipeline::create(wgsl, entry_point)?;
        Ok(Self { inner })
    }

    /// The entry point's `@workgroup_size` as `(x, y, z)`.
    pub fn workgroup_size(&self) -> (u32, u32, u32) {
        self.inner.workgroup_size()
    }

    /// The bindings the entry point uses, by group then binding: exactly what a [`Dispatch`] of it must
    /// bind.
    pub fn bindings(&self) -> Vec<BindingInfo> {
        self.inner
            .bindings()
            .into_iter()
            .map(BindingInfo::from)
            .collect()
    }

    /// The raw WIT resource, for code that calls [`super::bindings`] directly.
    #[doc(hidden)]
    pub fn as_raw(&self) -> &wit::Pipeline {
        &self.inner
    }
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("handle", &self.inner.handle())
            .finish()
    }
}

/// How an entry point uses a binding, mirroring the WIT enum `binding-kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum BindingKind {
    /// `var<uniform>`.
    Uniform,
    /// `var<storage, read>`.
    StorageRead,
    /// `var<storage, read_write>`.
    StorageReadWrite,
}

impl BindingKind {
    /// The kind's name in the WIT file: `"uniform"`, `"storage-read"` or `"storage-read-write"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Uniform => "uniform",
            Self::StorageRead => "storage-read",
            Self::StorageReadWrite => "storage-read-write",
        }
    }
}

impl fmt::Display for BindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<wit::BindingKind> for BindingKind {
    fn from(kind: wit::BindingKind) -> Self {
        match kind {
            wit::BindingKind::Uniform => Self::Uniform,
            wit::BindingKind::StorageRead => Self::StorageRead,
            wit::BindingKind::StorageReadWrite => Self::StorageReadWrite,
        }
    }
}

/// One binding an entry point uses ([`Pipeline::bindings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct BindingInfo {
    /// `@group(..)`.
    pub group: u32,
    /// `@binding(..)`.
    pub binding: u32,
    /// Uniform, read-only storage or read-write storage.
    pub kind: BindingKind,
    /// The smallest buffer range, in bytes, that fits the declared type (a runtime-sized array counts
    /// one element).
    pub min_size: u64,
}

impl From<wit::BindingInfo> for BindingInfo {
    fn from(info: wit::BindingInfo) -> Self {
        Self {
            group: info.group,
            binding: info.binding,
            kind: info.kind.into(),
            min_size: info.min_size,
        }
    }
}

/// A buffer range bound at `@group(group) @binding(binding)`.
#[derive(Debug, Clone, Copy)]
struct Binding<'a> {
    group: u32,
    binding: u32,
    buffer: &'a Buffer,
    offset: u64,
    size: Option<u64>,
}

/// One dispatch of a [`Pipeline`]: its bindings and workgroup counts, built step by step and run with
/// [`submit`] (or [`Dispatch::submit`]).
///
/// It must bind exactly the bindings the entry point uses ([`Pipeline::bindings`]), no fewer and no
/// more, else the host answers [`Error::BindingMismatch`]. A buffer bound `read_write` may not be bound
/// a second time in the same dispatch ([`Error::Conflict`]). Binding a slot that is already bound
/// replaces the earlier binding. The workgroup counts default to `(1, 1, 1)`.
///
/// ```no_run
/// # fn main() -> netmind_sdk::gpu::Result<()> {
/// use netmind_sdk::gpu::{self, Buffer, Dispatch, Pipeline};
///
/// const SCALE: &str = "
///     @group(0) @binding(0) var<uniform> factor: f32;
///     @group(0) @binding(1) var<storage, read_write> data: array<f32>;
///
///     @compute @workgroup_size(256)
///     fn main(@builtin(global_invocation_id) id: vec3<u32>) {
///         if id.x < arrayLength(&data) { data[id.x] *= factor; }
///     }
/// ";
/// let pipeline = Pipeline::new(SCALE, "main")?;
/// let (params, data) = (Buffer::from_slice(&[2.0f32])?, Buffer::zeroed::<f32>(1 << 20)?);
/// let hashes = gpu::submit(&[Dispatch::new(&pipeline)
///     .bind(0, &params)
///     .bind(1, &data)
///     .workgroups(gpu::workgroups_for(1 << 20, 256), 1, 1)])?;
/// # let _ = hashes;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Dispatch<'a> {
    pipeline: &'a Pipeline,
    bindings: Vec<Binding<'a>>,
    workgroups: (u32, u32, u32),
}

impl<'a> Dispatch<'a> {
    /// A dispatch of `pipeline` with no bindings yet and one workgroup.
    pub fn new(pipeline: &'a Pipeline) -> Self {
        Self {
            pipeline,
            bindings: Vec::new(),
            workgroups: (1, 1, 1),
        }
    }

    /// Binds the whole of `buffer` at `@group(0) @binding(binding)`.
    #[must_use]
    pub fn bind(self, binding: u32, buffer: &'a Buffer) -> Self {
        self.bind_at(0, binding, buffer)
    }

    /// Binds the whole of `buffer` at `@group(group) @binding(binding)`.
    #[must_use]
    pub fn bind_at(self, group: u32, binding: u32, buffer: &'a Buffer) -> Self {
        self.push(Binding {
            group,
            binding,
            buffer,
            offset: 0,
            size: None,
        })
    }

    /// Binds `size` bytes of `buffer` from byte `offset` at `@group(group) @binding(binding)`. The offset
    /// must be a multiple of [`Limits::min_binding_offset_alignment`](super::Limits) (256 on most
    /// devices) and the range must fit in the buffer, else [`submit`] fails with [`Error::OutOfRange`].
    #[must_use]
    pub fn bind_range(
        self,
        group: u32,
        binding: u32,
        buffer: &'a Buffer,
        offset: u64,
        size: u64,
    ) -> Self {
        self.push(Binding {
            group,
            binding,
            buffer,
            offset,
            size: Some(size),
        })
    }

    /// Sets the workgroup counts in x, y and z (each at most
    /// [`Limits::max_workgroups_per_dimension`](super::Limits)); [`workgroups_for`](super::workgroups_for)
    /// computes a count from a number of items.
    #[must_use]
    pub fn workgroups(mut self, x: u32, y: u32, z: u32) -> Self {
        self.workgroups = (x, y, z);
        self
    }

    /// The workgroup counts.
    pub fn workgroup_counts(&self) -> (u32, u32, u32) {
        self.workgroups
    }

    /// Runs this one dispatch and waits for it; returns the job's hash chain after it.
    ///
    /// # Errors
    ///
    /// As [`submit`].
    pub fn submit(&self) -> Result<[u8; 32]> {
        let hashes = submit(std::slice::from_ref(self))?;
        Ok(hashes[0])
    }

    fn push(mut self, binding: Binding<'a>) -> Self {
        self.bindings
            .retain(|b| (b.group, b.binding) != (binding.group, binding.binding));
        self.bindings.push(binding);
        self
    }
}

/// Runs `dispatches` in order, in one submission, and waits for them; returns the job's hash chain
/// after each (the SHA-256 chain over every range each dispatch could write, see
/// [`Usage::hash_chain`](super::Usage::hash_chain)).
///
/// Each dispatch sees the writes of those before it.
///
/// # Errors
///
/// [`Error::BindingMismatch`] when a dispatch's bindings are not exactly its entry point's, or a buffer
/// range is smaller than the binding's `min_size`; [`Error::Conflict`] for a writable buffer bound twice;
/// [`Error::OutOfRange`] for a range outside its buffer or an unaligned offset; [`Error::LimitExceeded`]
/// for too many workgroups; [`Error::QuotaExceeded`] beyond the job's dispatch quotas;
/// [`Error::Timeout`] when the job's GPU time runs out (after which every GPU call fails).
pub fn submit(dispatches: &[Dispatch<'_>]) -> Result<Vec<[u8; 32]>> {
    in_host()?;
    let bindings: Vec<Vec<wit::Binding<'_>>> = dispatches
        .iter()
        .map(|d| {
            d.bindings
                .iter()
                .map(|b| wit::Binding {
                    group: b.group,
                    binding: b.binding,
                    buffer: b.buffer.as_raw(),
                    offset: b.offset,
                    size: b.size,
                })
                .collect()
        })
        .collect();
    let raw: Vec<wit::Dispatch<'_>> = dispatches
        .iter()
        .zip(&bindings)
        .map(|(d, bindings)| wit::Dispatch {
            pipeline: d.pipeline.as_raw(),
            bindings,
            workgroups: d.workgroups,
        })
        .collect();
    let reports = wit::submit(&raw)?;
    if reports.len() != dispatches.len() {
        return Err(Error::Internal(format!(
            "the host reported {} dispatches of {}",
            reports.len(),
            dispatches.len()
        )));
    }
    reports
        .into_iter()
        .map(|report| super::hash32(&report.hash))
        .collect()
}

/// Compiles `entry_point` of `wgsl`, binds `buffers` at `@group(0) @binding(0)`, `@binding(1)`, ... in
/// order, dispatches `workgroups` (x, y, z) once and waits; returns the job's hash chain after it.
///
/// The one-call way to run a shader; to run one several times, keep a [`Pipeline`] and use [`Dispatch`].
///
/// # Errors
///
/// Those of [`Pipeline::new`] and [`submit`].
pub fn run(
    wgsl: &str,
    entry_point: &str,
    buffers: &[&Buffer],
    workgroups: (u32, u32, u32),
) -> Result<[u8; 32]> {
    let pipeline = Pipeline::new(wgsl, entry_point)?;
    let mut dispatch =
        Dispatch::new(&pipeline).workgroups(workgroups.0, workgroups.1, workgroups.2);
    for (binding, buffer) in (0u32..).zip(buffers) {
        dispatch = dispatch.bind(binding, buffer);
    }
    dispatch.submit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_kinds_map_to_wit_names() {
        for (wit, name) in [
            (wit::BindingKind::Uniform, "uniform"),
            (wit::BindingKind::StorageRead, "storage-read"),
            (wit::BindingKind::StorageReadWrite, "storage-read-write"),
        ] {
            assert_eq!(BindingKind::from(wit).to_string(), name);
        }
        let info = BindingInfo::from(wit::BindingInfo {
            group: 1,
            binding: 2,
            kind: wit::BindingKind::StorageRead,
            min_size: 16,
        });
        assert_eq!(
            serde_json::to_string(&info).unwrap(),
            r#"{"group":1,"binding":2,"kind":"storage-read","min_size":16}"#
        );
    }

    #[test]
    #[cfg(not(target_arch = "wasm32"))]
    fn natively_run_says_no_adapter() {
        let err = run(
            "@compute @workgroup_size(1) fn main() {}",
            "main",
            &[],
            (1, 1, 1),
        )
        .unwrap_err();
        assert!(matches!(err, Error::NoAdapter(_)), "{err}");
        assert!(matches!(submit(&[]), Err(Error::NoAdapter(_))));
    }
}
