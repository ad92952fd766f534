//! The `netmind:gpu/compute` WIT interface as seen by a job: buffers and pipelines are resources in
//! the job's table, each a handle on an object in the job's GPU worker.

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::proto::{self, Bind, BindingInfo, Outcome, Request};
use super::{GpuError, JobGpu};

mod generated {
    wasmtime::component::bindgen!({
        world: "gpu",
        path: "wit/gpu.wit",
        with: {
            "netmind:gpu/compute.buffer": super::BufferRes,
            "netmind:gpu/compute.pipeline": super::PipelineRes,
        },
        imports: { default: trappable },
    });
}
use generated::netmind::gpu::compute::{self, Error as WitError};

/// A buffer a job holds.
#[allow(unreachable_pub, reason = "named by the generated bindings")]
pub struct BufferRes {
    id: u32,
    size: u64,
}

/// A pipeline a job holds.
#[allow(unreachable_pub, reason = "named by the generated bindings")]
pub struct PipelineRes {
    id: u32,
    workgroup_size: [u32; 3],
    bindings: Vec<BindingInfo>,
}

/// What the GPU host functions work on.
pub(crate) struct GpuView<'a> {
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) gpu: &'a mut JobGpu,
}

struct HasGpu;

impl HasData for HasGpu {
    type Data<'a> = GpuView<'a>;
}

/// Adds `netmind:gpu/compute` to a component linker.
pub(crate) fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> GpuView<'_>,
) -> wasmtime::Result<()> {
    compute::add_to_linker::<_, HasGpu>(linker, view)
}

impl From<GpuError> for WitError {
    fn from(e: GpuError) -> Self {
        match e {
            GpuError::NoAdapter(m) => Self::NoAdapter(m),
            GpuError::InvalidShader(m) => Self::InvalidShader(m),
            GpuError::Unsupported(m) => Self::Unsupported(m),
            GpuError::BindingMismatch(m) => Self::BindingMismatch(m),
            GpuError::OutOfRange(m) => Self::OutOfRange(m),
            GpuError::QuotaExceeded(m) => Self::QuotaExceeded(m),
            GpuError::LimitExceeded(m) => Self::LimitExceeded(m),
            GpuError::Conflict(m) => Self::Conflict(m),
            GpuError::Timeout(m) => Self::Timeout(m),
            GpuError::DeviceLost(m) => Self::DeviceLost(m),
            GpuError::Internal(m) => Self::Internal(m),
        }
    }
}

type WitResult<T> = wasmtime::Result<Result<T, WitError>>;

fn kind(k: proto::BindingKind) -> compute::BindingKind {
    match k {
        proto::BindingKind::Uniform => compute::BindingKind::Uniform,
        proto::BindingKind::StorageRead => compute::BindingKind::StorageRead,
        proto::BindingKind::StorageReadWrite => compute::BindingKind::StorageReadWrite,
    }
}

impl GpuView<'_> {
    /// Starts the worker if needed and returns the caps.
    fn caps(&mut self) -> Result<proto::Caps, GpuError> {
        // Starts the worker on the first call; after a timeout or a lost device, that error.
        self.gpu.ensure_started()?;
        self.gpu
            .caps
            .ok_or_else(|| GpuError::Internal("the GPU worker gave no limits".into()))
    }
}

impl compute::Host for GpuView<'_> {
    fn adapter(&mut self) -> WitResult<compute::AdapterInfo> {
        if let Err(e) = self.caps() {
            return Ok(Err(e.into()));
        }
        let a = self.gpu.adapter.clone().expect("set with the caps");
        Ok(Ok(compute::AdapterInfo {
            name: a.name,
            backend: a.backend,
            device_type: a.device_type,
            vendor: a.vendor,
            device: a.device,
            driver: format!("{} {}", a.driver, a.driver_info).trim().to_owned(),
            is_software: a.is_software,
        }))
    }

    fn get_limits(&mut self) -> WitResult<compute::Limits> {
        let c = match self.caps() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e.into())),
        };
        let [x, y, z] = c.max_workgroup_size;
        Ok(Ok(compute::Limits {
            max_buffer_size: c.max_buffer_size,
            max_total_bytes: c.max_total_bytes,
            max_buffers: c.max_buffers,
            max_pipelines: c.max_pipelines,
            max_dispatches: c.max_dispatches,
            max_dispatches_per_submit: c.max_dispatches_per_submit,
            max_workgroup_size: (x, y, z),
            max_invocations_per_workgroup: c.max_invocations_per_workgroup,
            max_workgroups_per_dimension: c.max_workgroups_per_dimension,
            max_storage_binding_size: c.max_storage_binding_size,
            max_uniform_binding_size: c.max_uniform_binding_size,
            min_binding_offset_alignment: c.min_binding_offset_alignment,
            max_bind_groups: c.max_bind_groups,
            gpu_time_budget_ms: c.gpu_time_budget_ms,
            max_shader_bytes: c.max_shader_bytes,
        }))
    }

    fn submit(
        &mut self,
        dispatches: Vec<compute::Dispatch>,
    ) -> WitResult<Vec<compute::DispatchReport>> {
        let caps = match self.caps() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e.into())),
        };
        if dispatches.len() > caps.max_dispatches_per_submit as usize {
            return Ok(Err(WitError::QuotaExceeded(format!(
                "{} dispatches in one submit; at most {} (split them over several submits)",
                dispatches.len(),
                caps.max_dispatches_per_submit
            ))));
        }
        if let Some((i, d)) = dispatches
            .iter()
            .enumerate()
            .find(|(_, d)| d.bindings.len() > MAX_BINDINGS)
        {
            return Ok(Err(WitError::BindingMismatch(format!(
                "dispatch {i} has {} bindings; a dispatch has at most {MAX_BINDINGS}",
                d.bindings.len()
            ))));
        }
        let count = dispatches.len();
        let mut reqs = Vec::with_capacity(dispatches.len());
        for d in dispatches {
            let pipeline = self.table.get(&d.pipeline)?.id;
            let mut bindings = Vec::with_capacity(d.bindings.len());
            for b in d.bindings {
                bindings.push(Bind {
                    group: b.group,
                    binding: b.binding,
                    buffer: self.table.get(&b.buffer)?.id,
                    offset: b.offset,
                    size: b.size,
                });
            }
            let (x, y, z) = d.workgroups;
            reqs.push(proto::Dispatch {
                pipeline,
                bindings,
                workgroups: [x, y, z],
            });
        }
        match self
            .gpu
            .request(Request::Submit { dispatches: reqs }, Vec::new(), true)
        {
            Ok((Outcome::Submitted { hashes }, _)) if hashes.len() == count => Ok(Ok(hashes
                .into_iter()
                .map(|h| compute::DispatchReport { hash: h.to_vec() })
                .collect())),
            Ok(_) => Ok(Err(unexpected())),
            Err(e) => Ok(Err(e.into())),
        }
    }

    fn get_usage(&mut self) -> wasmtime::Result<compute::Usage> {
        let u = self.gpu.usage_now();
        Ok(compute::Usage {
            dispatches: u.dispatches,
            submits: u.submits,
            gpu_time_ns: if self.gpu.deterministic {
                0
            } else {
                u64::try_from(u.time_ns).unwrap_or(u64::MAX)
            },
            bytes_held: u.bytes_held,
            peak_bytes: u.peak_bytes,
            hash_chain: u.hash_chain.to_vec(),
        })
    }
}

/// Most bindings one dispatch may carry (a request stays a small frame).
const MAX_BINDINGS: usize = 64;
/// Longest entry-point name.
const MAX_ENTRY: usize = 255;

/// Checks `offset..offset + len` against a buffer before any bytes travel to the worker.
fn check_range(size: u64, offset: u64, len: u64, what: &str) -> Result<(), WitError> {
    if offset.checked_add(len).is_none_or(|end| end > size) {
        return Err(WitError::OutOfRange(format!(
            "{what} at offset {offset} of {len} bytes goes past the end of a {size}-byte buffer"
        )));
    }
    Ok(())
}

fn unexpected() -> WitError {
    WitError::Internal("the GPU worker answered with something else".into())
}

impl compute::HostBuffer for GpuView<'_> {
    fn create(&mut self, size: u64) -> WitResult<Resource<BufferRes>> {
        let id = self.gpu.next_id();
        match self
            .gpu
            .request(Request::CreateBuffer { id, size }, Vec::new(), true)
        {
            Ok(_) => Ok(Ok(self.table.push(BufferRes { id, size })?)),
            Err(e) => Ok(Err(e.into())),
        }
    }

    fn size(&mut self, this: Resource<BufferRes>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&this)?.size)
    }

    fn write(&mut self, this: Resource<BufferRes>, offset: u64, data: Vec<u8>) -> WitResult<()> {
        let b = self.table.get(&this)?;
        let id = b.id;
        if let Err(e) = check_range(b.size, offset, data.len() as u64, "a write") {
            return Ok(Err(e));
        }
        match self
            .gpu
            .request(Request::WriteBuffer { id, offset }, data, true)
        {
            Ok(_) => Ok(Ok(())),
            Err(e) => Ok(Err(e.into())),
        }
    }

    fn read(&mut self, this: Resource<BufferRes>, offset: u64, len: u64) -> WitResult<Vec<u8>> {
        let b = self.table.get(&this)?;
        let id = b.id;
        if let Err(e) = check_range(b.size, offset, len, "a read") {
            return Ok(Err(e));
        }
        if len > self.gpu.memory_bytes {
            return Ok(Err(WitError::OutOfRange(format!(
                "a read of {len} bytes is more than the job's memory limit of {} bytes; read in parts",
                self.gpu.memory_bytes
            ))));
        }
        match self
            .gpu
            .request(Request::ReadBuffer { id, offset, len }, Vec::new(), true)
        {
            Ok((Outcome::Data, bytes)) if bytes.len() as u64 == len => Ok(Ok(bytes)),
            Ok(_) => Ok(Err(unexpected())),
            Err(e) => Ok(Err(e.into())),
        }
    }

    fn drop(&mut self, this: Resource<BufferRes>) -> wasmtime::Result<()> {
        let b = self.table.delete(this)?;
        self.gpu.release(Request::DropBuffer { id: b.id });
        Ok(())
    }
}

impl compute::HostPipeline for GpuView<'_> {
    fn create(&mut self, wgsl: String, entry_point: String) -> WitResult<Resource<PipelineRes>> {
        if entry_point.len() > MAX_ENTRY {
            return Ok(Err(WitError::BindingMismatch(format!(
                "the entry point's name is {} bytes; names are at most {MAX_ENTRY}",
                entry_point.len()
            ))));
        }
        let caps = match self.caps() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e.into())),
        };
        if wgsl.len() > caps.max_shader_bytes as usize {
            return Ok(Err(WitError::QuotaExceeded(format!(
                "the shader is {} bytes; shaders are at most {} bytes",
                wgsl.len(),
                caps.max_shader_bytes
            ))));
        }
        let id = self.gpu.next_id();
        let req = Request::CreatePipeline {
            id,
            entry: entry_point,
        };
        match self.gpu.request(req, wgsl.into_bytes(), true) {
            Ok((
                Outcome::Pipeline {
                    workgroup_size,
                    bindings,
                },
                _,
            )) => Ok(Ok(self.table.push(PipelineRes {
                id,
                workgroup_size,
                bindings,
            })?)),
            Ok(_) => Ok(Err(unexpected())),
            Err(e) => Ok(Err(e.into())),
        }
    }

    fn workgroup_size(&mut self, this: Resource<PipelineRes>) -> wasmtime::Result<(u32, u32, u32)> {
        let [x, y, z] = self.table.get(&this)?.workgroup_size;
        Ok((x, y, z))
    }

    fn bindings(
        &mut self,
        this: Resource<PipelineRes>,
    ) -> wasmtime::Result<Vec<compute::BindingInfo>> {
        Ok(self
            .table
            .get(&this)?
            .bindings
            .iter()
            .map(|b| compute::BindingInfo {
                group: b.group,
                binding: b.binding,
                kind: kind(b.kind),
                min_size: b.min_size,
            })
            .collect())
    }

    fn drop(&mut self, this: Resource<PipelineRes>) -> wasmtime::Result<()> {
        let p = self.table.delete(this)?;
        self.gpu.release(Request::DropPipeline { id: p.id });
        Ok(())
    }
}
