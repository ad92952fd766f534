//! The worker's side: one job's wgpu device, its buffers and pipelines, every request checked before
//! it reaches wgpu, every wgpu call inside error scopes.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use sha2::{Digest, Sha256};
use wgpu::BufferUsages as U;

use super::GpuError;
use super::probe;
use super::proto::{Bind, BindingKind, Caps, Dispatch, Outcome, Quota, Stats};
use super::shader::{self, Reflection};

struct Pipeline {
    pipeline: wgpu::ComputePipeline,
    reflection: Reflection,
    /// sha256(sha256(wgsl) ‖ entry point): names the code in the hash chain.
    code_hash: [u8; 32],
}

/// One job's GPU context in the worker.
pub(crate) struct JobDevice {
    device: wgpu::Device,
    queue: wgpu::Queue,
    caps: Caps,
    quota: Quota,
    buffers: HashMap<u32, wgpu::Buffer>,
    pipelines: HashMap<u32, Pipeline>,
    lost: Arc<AtomicBool>,
    pub(crate) stats: Stats,
}

fn err_internal(e: impl std::fmt::Display) -> GpuError {
    GpuError::Internal(e.to_string())
}

impl JobDevice {
    /// Opens the adapter (by index or name, else the best) and creates the job's device.
    pub(crate) fn open(
        adapter: Option<&str>,
        quota: Quota,
    ) -> Result<(Self, super::AdapterDesc), GpuError> {
        let adapter = probe::select_adapter(adapter)?;
        let desc = probe::describe(&adapter);
        let al = adapter.limits();
        let max_buffer_size = al.max_buffer_size.min(quota.max_buffer_size);
        let mut required = al.clone();
        required.max_buffer_size = max_buffer_size;
        required.max_storage_buffer_binding_size =
            al.max_storage_buffer_binding_size.min(max_buffer_size);
        required.max_uniform_buffer_binding_size =
            al.max_uniform_buffer_binding_size.min(max_buffer_size);
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("netmind-job"),
            required_features: wgpu::Features::empty(),
            required_limits: required.clone(),
            ..Default::default()
        }))
        .map_err(|e| GpuError::NoAdapter(format!("could not open {}: {e}", desc.name)))?;
        // The default handler panics; an error nobody scoped is reported by the scope around the call.
        device.on_uncaptured_error(Arc::new(|e: wgpu::Error| {
            tracing::warn!(target: "host::gpu", error = %e, "uncaptured wgpu error");
        }));
        let lost = Arc::new(AtomicBool::new(false));
        let flag = lost.clone();
        device.set_device_lost_callback(move |_, _| flag.store(true, Ordering::SeqCst));
        let caps = Caps {
            max_buffer_size,
            max_total_bytes: quota.max_total_bytes,
            max_buffers: quota.max_buffers,
            max_pipelines: quota.max_pipelines,
            max_dispatches: quota.max_dispatches,
            max_dispatches_per_submit: quota.max_dispatches_per_submit,
            max_workgroup_size: [
                required.max_compute_workgroup_size_x,
                required.max_compute_workgroup_size_y,
                required.max_compute_workgroup_size_z,
            ],
            max_invocations_per_workgroup: required.max_compute_invocations_per_workgroup,
            max_workgroups_per_dimension: required.max_compute_workgroups_per_dimension,
            max_storage_binding_size: required.max_storage_buffer_binding_size,
            max_uniform_binding_size: required.max_uniform_buffer_binding_size,
            min_binding_offset_alignment: required
                .min_storage_buffer_offset_alignment
                .max(required.min_uniform_buffer_offset_alignment),
            max_bind_groups: required.max_bind_groups,
            max_workgroup_storage_size: required.max_compute_workgroup_storage_size,
            gpu_time_budget_ms: quota.gpu_time_ms,
            max_shader_bytes: quota.max_shader_bytes,
        };
        let job = Self {
            device,
            queue,
            caps,
            quota,
            buffers: HashMap::new(),
            pipelines: HashMap::new(),
            lost,
            stats: Stats::default(),
        };
        Ok((job, desc))
    }

    pub(crate) fn caps(&self) -> Caps {
        self.caps
    }

    /// Runs `f` inside validation, out-of-memory and internal error scopes.
    fn scoped<T>(
        &self,
        what: impl Fn(String) -> GpuError,
        f: impl FnOnce() -> T,
    ) -> Result<T, GpuError> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let out = f();
        let errors = [
            pollster::block_on(internal.pop()),
            pollster::block_on(validation.pop()),
            pollster::block_on(oom.pop()),
        ];
        match errors.into_iter().flatten().next() {
            None => Ok(out),
            Some(wgpu::Error::OutOfMemory { .. }) => Err(GpuError::QuotaExceeded(
                "the GPU is out of memory; use smaller or fewer buffers".into(),
            )),
            Some(wgpu::Error::Validation { description, .. }) => Err(what(description)),
            Some(e) => Err(GpuError::Internal(e.to_string())),
        }
    }

    fn buffer(&self, id: u32) -> Result<&wgpu::Buffer, GpuError> {
        self.buffers
            .get(&id)
            .ok_or_else(|| GpuError::Internal(format!("no buffer {id}")))
    }

    fn note_peak(&mut self, extra: u64) {
        let now = self.stats.bytes_held + extra;
        self.stats.peak_bytes = self.stats.peak_bytes.max(now);
    }

    pub(crate) fn create_buffer(&mut self, id: u32, size: u64) -> Result<Outcome, GpuError> {
        if self.buffers.contains_key(&id) {
            return Err(GpuError::Internal(format!("buffer id {id} is in use")));
        }
        if size == 0 || !size.is_multiple_of(4) {
            return Err(GpuError::OutOfRange(format!(
                "a buffer of {size} bytes: sizes must be a positive multiple of 4"
            )));
        }
        if size > self.caps.max_buffer_size {
            return Err(GpuError::LimitExceeded(format!(
                "a buffer of {size} bytes is larger than the largest allowed, {} bytes",
                self.caps.max_buffer_size
            )));
        }
        if self.buffers.len() >= self.quota.max_buffers as usize {
            return Err(GpuError::QuotaExceeded(format!(
                "the job already holds {} buffers, the most it may; drop some first",
                self.buffers.len()
            )));
        }
        if self.stats.bytes_held + size > self.quota.max_total_bytes {
            return Err(GpuError::QuotaExceeded(format!(
                "a buffer of {size} bytes would bring the job's GPU memory to {} bytes; it may hold {} \
                 (`[resources.gpu] memory` in netmind.toml)",
                self.stats.bytes_held + size,
                self.quota.max_total_bytes
            )));
        }
        let buffer = self.scoped(GpuError::Internal, || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size,
                usage: U::STORAGE | U::UNIFORM | U::COPY_SRC | U::COPY_DST,
                mapped_at_creation: false,
            })
        })?;
        self.buffers.insert(id, buffer);
        self.stats.bytes_held += size;
        self.note_peak(0);
        Ok(Outcome::Done)
    }

    pub(crate) fn drop_buffer(&mut self, id: u32) {
        if let Some(b) = self.buffers.remove(&id) {
            self.stats.bytes_held -= b.size();
            b.destroy();
        }
    }

    fn check_range(&self, id: u32, offset: u64, len: u64, what: &str) -> Result<(), GpuError> {
        let size = self.buffer(id)?.size();
        if !offset.is_multiple_of(4) || !len.is_multiple_of(4) {
            return Err(GpuError::OutOfRange(format!(
                "{what} at offset {offset} of {len} bytes: offset and length must be multiples of 4"
            )));
        }
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(GpuError::OutOfRange(format!(
                "{what} at offset {offset} of {len} bytes goes past the end of a {size}-byte buffer"
            )));
        }
        Ok(())
    }

    pub(crate) fn write_buffer(
        &mut self,
        id: u32,
        offset: u64,
        data: &[u8],
    ) -> Result<Outcome, GpuError> {
        self.check_range(id, offset, data.len() as u64, "a write")?;
        if data.is_empty() {
            return Ok(Outcome::Done);
        }
        let buffer = self.buffer(id)?;
        // wgpu keeps a staging copy of a write until the next submit, even past the buffer's
        // destruction: submit (empty) and wait now, so what the job holds is what it is charged for.
        let index = self.scoped(GpuError::Internal, || {
            self.queue.write_buffer(buffer, offset, data);
            self.queue.submit([])
        })?;
        self.wait(index)?;
        Ok(Outcome::Done)
    }

    pub(crate) fn read_buffer(
        &mut self,
        id: u32,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, GpuError> {
        self.check_range(id, offset, len, "a read")?;
        if len == 0 {
            return Ok(Vec::new());
        }
        self.note_peak(len);
        let staging = self.staging(len)?;
        let src = self.buffer(id)?;
        let mut enc = self.device.create_command_encoder(&Default::default());
        let index = self.scoped(GpuError::Internal, || {
            enc.copy_buffer_to_buffer(src, offset, &staging, 0, len);
            self.queue.submit([enc.finish()])
        })?;
        let bytes = self.map_and_read(&staging, index, |view| view.to_vec())?;
        staging.destroy();
        Ok(bytes)
    }

    fn staging(&self, size: u64) -> Result<wgpu::Buffer, GpuError> {
        self.scoped(GpuError::Internal, || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("staging"),
                size,
                usage: U::MAP_READ | U::COPY_DST,
                mapped_at_creation: false,
            })
        })
    }

    /// Waits for `index`, maps `staging` and hands its bytes to `f`.
    fn map_and_read<T>(
        &self,
        staging: &wgpu::Buffer,
        index: wgpu::SubmissionIndex,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<T, GpuError> {
        let (tx, rx) = mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait(index)?;
        match rx.try_recv() {
            Ok(Ok(())) => {}
            _ => return Err(self.lost_or("mapping a buffer for reading failed")),
        }
        let view = staging.get_mapped_range(..).map_err(err_internal)?;
        let out = f(&view);
        drop(view);
        staging.unmap();
        Ok(out)
    }

    /// Waits for a submission. The sandbox bounds how long; a lost device panics inside wgpu's
    /// `poll`, which becomes `device-lost`.
    fn wait(&self, index: wgpu::SubmissionIndex) -> Result<(), GpuError> {
        let polled = catch_unwind(AssertUnwindSafe(|| {
            self.device.poll(wgpu::PollType::Wait {
                submission_index: Some(index),
                timeout: None,
            })
        }));
        match polled {
            Ok(Ok(_)) if !self.lost.load(Ordering::SeqCst) => Ok(()),
            Ok(Ok(_)) => Err(self.lost_or("")),
            Ok(Err(e)) => Err(self.lost_or(&e.to_string())),
            Err(_) => Err(GpuError::DeviceLost(
                "the GPU device was lost while running the job's work".into(),
            )),
        }
    }

    fn lost_or(&self, what: &str) -> GpuError {
        if self.lost.load(Ordering::SeqCst) || what.is_empty() {
            GpuError::DeviceLost("the GPU device was lost while running the job's work".into())
        } else {
            GpuError::Internal(what.to_owned())
        }
    }

    pub(crate) fn create_pipeline(
        &mut self,
        id: u32,
        wgsl: &[u8],
        entry: &str,
    ) -> Result<Outcome, GpuError> {
        if self.pipelines.contains_key(&id) {
            return Err(GpuError::Internal(format!("pipeline id {id} is in use")));
        }
        if self.pipelines.len() >= self.quota.max_pipelines as usize {
            return Err(GpuError::QuotaExceeded(format!(
                "the job already holds {} pipelines, the most it may; drop some first",
                self.pipelines.len()
            )));
        }
        let wgsl = std::str::from_utf8(wgsl)
            .map_err(|e| GpuError::InvalidShader(format!("the WGSL is not UTF-8: {e}")))?;
        let reflection = shader::reflect(wgsl, entry, &self.caps)?;
        let pipeline = self.scoped(
            |d| GpuError::InvalidShader(format!("the driver refused the shader: {d}")),
            || {
                let module = self
                    .device
                    .create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: None,
                        source: wgpu::ShaderSource::Wgsl(wgsl.into()),
                    });
                self.device
                    .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                        label: None,
                        layout: None,
                        module: &module,
                        entry_point: Some(entry),
                        compilation_options: Default::default(),
                        cache: None,
                    })
            },
        )?;
        let mut h = Sha256::new();
        h.update(Sha256::digest(wgsl.as_bytes()));
        h.update(entry.as_bytes());
        let out = Outcome::Pipeline {
            workgroup_size: reflection.workgroup_size,
            bindings: reflection.bindings.clone(),
        };
        self.pipelines.insert(
            id,
            Pipeline {
                pipeline,
                reflection,
                code_hash: h.finalize().into(),
            },
        );
        Ok(out)
    }

    pub(crate) fn drop_pipeline(&mut self, id: u32) {
        self.pipelines.remove(&id);
    }

    /// Checks one dispatch completely before anything is encoded; returns its bindings' resolved
    /// ranges `(bind, size, writable)` in (group, binding) order.
    fn check_dispatch(&self, i: usize, d: &Dispatch) -> Result<Vec<(Bind, u64, bool)>, GpuError> {
        let at = |m: String| format!("dispatch {i}: {m}");
        let p = self
            .pipelines
            .get(&d.pipeline)
            .ok_or_else(|| GpuError::Internal(at(format!("no pipeline {}", d.pipeline))))?;
        let max = self.caps.max_workgroups_per_dimension;
        if d.workgroups.iter().any(|&w| w > max) {
            let [x, y, z] = d.workgroups;
            return Err(GpuError::LimitExceeded(at(format!(
                "({x}, {y}, {z}) workgroups; this device allows at most {max} in each dimension"
            ))));
        }
        let [wx, wy, wz] = p.reflection.workgroup_size;
        let invocations = d
            .workgroups
            .iter()
            .chain(&[wx, wy, wz])
            .fold(1u64, |acc, &n| acc.saturating_mul(u64::from(n)));
        if invocations > self.quota.max_invocations_per_dispatch {
            return Err(GpuError::LimitExceeded(at(format!(
                "{invocations} invocations; a dispatch may run at most {}",
                self.quota.max_invocations_per_dispatch
            ))));
        }
        let mut binds: Vec<Bind> = d.bindings.clone();
        binds.sort_by_key(|b| (b.group, b.binding));
        for pair in binds.windows(2) {
            if (pair[0].group, pair[0].binding) == (pair[1].group, pair[1].binding) {
                return Err(GpuError::BindingMismatch(at(format!(
                    "@group({}) @binding({}) is bound twice",
                    pair[0].group, pair[0].binding
                ))));
            }
        }
        let wanted = &p.reflection.bindings;
        for w in wanted {
            if !binds
                .iter()
                .any(|b| (b.group, b.binding) == (w.group, w.binding))
            {
                return Err(GpuError::BindingMismatch(at(format!(
                    "the entry point uses @group({}) @binding({}) ({:?}, at least {} bytes) but the \
                     dispatch does not bind it",
                    w.group, w.binding, w.kind, w.min_size
                ))));
            }
        }
        let align = u64::from(self.caps.min_binding_offset_alignment);
        let mut out = Vec::with_capacity(binds.len());
        for b in binds {
            let Some(w) = wanted
                .iter()
                .find(|w| (w.group, w.binding) == (b.group, b.binding))
            else {
                return Err(GpuError::BindingMismatch(at(format!(
                    "@group({}) @binding({}) is bound but the entry point does not use it; it uses {}",
                    b.group,
                    b.binding,
                    describe_bindings(wanted)
                ))));
            };
            let where_ = format!("@group({}) @binding({})", b.group, b.binding);
            let buf_size = self.buffer(b.buffer)?.size();
            if !b.offset.is_multiple_of(align) || b.offset >= buf_size {
                return Err(GpuError::OutOfRange(at(format!(
                    "{where_}: offset {} must be a multiple of {align} and inside the {buf_size}-byte buffer",
                    b.offset
                ))));
            }
            let size = b.size.unwrap_or(buf_size - b.offset);
            if size == 0
                || !size.is_multiple_of(4)
                || b.offset.checked_add(size).is_none_or(|e| e > buf_size)
            {
                return Err(GpuError::OutOfRange(at(format!(
                    "{where_}: {size} bytes at offset {} do not fit in the {buf_size}-byte buffer (sizes are \
                     positive multiples of 4)",
                    b.offset
                ))));
            }
            if size < w.min_size {
                return Err(GpuError::BindingMismatch(at(format!(
                    "{where_}: the shader's type needs at least {} bytes; the range has {size}",
                    w.min_size
                ))));
            }
            let max = match w.kind {
                BindingKind::Uniform => self.caps.max_uniform_binding_size,
                _ => self.caps.max_storage_binding_size,
            };
            if size > max {
                return Err(GpuError::LimitExceeded(at(format!(
                    "{where_}: a {size}-byte range is more than a {:?} binding may have ({max} bytes); bind a \
                     smaller range",
                    w.kind
                ))));
            }
            out.push((b, size, w.kind == BindingKind::StorageReadWrite));
        }
        for (i_a, (a, a_size, a_w)) in out.iter().enumerate() {
            for (b, b_size, b_w) in &out[i_a + 1..] {
                if a.buffer != b.buffer || !(*a_w || *b_w) {
                    continue;
                }
                let overlap = a.offset < b.offset + b_size && b.offset < a.offset + a_size;
                if !(*a_w && *b_w) || overlap {
                    return Err(GpuError::Conflict(at(format!(
                        "one buffer is bound writable at @group({}) @binding({}) and also at @group({}) \
                         @binding({}); a shader may not read a buffer it is writing through another binding",
                        a.group, a.binding, b.group, b.binding
                    ))));
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn submit(&mut self, dispatches: &[Dispatch]) -> Result<Outcome, GpuError> {
        if dispatches.len() > self.quota.max_dispatches_per_submit as usize {
            return Err(GpuError::QuotaExceeded(format!(
                "{} dispatches in one submit; at most {} (split them over several submits)",
                dispatches.len(),
                self.quota.max_dispatches_per_submit
            )));
        }
        if self.stats.dispatches + dispatches.len() as u64 > self.quota.max_dispatches {
            return Err(GpuError::QuotaExceeded(format!(
                "the job has run {} dispatches; it may run {} in all",
                self.stats.dispatches, self.quota.max_dispatches
            )));
        }
        let checked: Vec<_> = dispatches
            .iter()
            .enumerate()
            .map(|(i, d)| self.check_dispatch(i, d))
            .collect::<Result<_, _>>()?;
        let mut hashes = Vec::with_capacity(dispatches.len());
        // Bounded chunks: the written ranges of a chunk are copied to one staging buffer for hashing.
        let cap = self
            .quota
            .max_total_bytes
            .min(self.caps.max_buffer_size)
            .max(4);
        if let Some((i, need)) = checked
            .iter()
            .map(|c| c.iter().filter(|b| b.2).map(|b| b.1).sum::<u64>())
            .enumerate()
            .find(|(_, need)| *need > cap)
        {
            return Err(GpuError::LimitExceeded(format!(
                "dispatch {i} can write {need} bytes; the host hashes at most {cap} bytes of writes per \
                 dispatch (bind smaller ranges)"
            )));
        }
        let mut start = 0;
        while start < dispatches.len() {
            let mut end = start;
            let mut staged = 0u64;
            while end < dispatches.len() {
                let need: u64 = checked[end].iter().filter(|c| c.2).map(|c| c.1).sum();
                if end > start && staged + need > cap {
                    break;
                }
                staged += need;
                end += 1;
            }
            self.run_chunk(
                &dispatches[start..end],
                &checked[start..end],
                staged,
                &mut hashes,
            )?;
            start = end;
        }
        self.stats.submits += 1;
        Ok(Outcome::Submitted { hashes })
    }

    fn run_chunk(
        &mut self,
        dispatches: &[Dispatch],
        checked: &[Vec<(Bind, u64, bool)>],
        staged: u64,
        hashes: &mut Vec<[u8; 32]>,
    ) -> Result<(), GpuError> {
        self.note_peak(staged);
        let staging = (staged > 0).then(|| self.staging(staged)).transpose()?;
        let mut enc = self.device.create_command_encoder(&Default::default());
        let index = self.scoped(
            |d| GpuError::BindingMismatch(format!("wgpu refused the dispatch: {d}")),
            || {
                let mut at = 0u64;
                for (d, binds) in dispatches.iter().zip(checked) {
                    let p = &self.pipelines[&d.pipeline];
                    let mut groups: Vec<u32> = binds.iter().map(|b| b.0.group).collect();
                    groups.dedup();
                    let bind_groups: Vec<(u32, wgpu::BindGroup)> = groups
                        .iter()
                        .map(|&g| {
                            let entries: Vec<_> = binds
                                .iter()
                                .filter(|b| b.0.group == g)
                                .map(|(b, size, _)| wgpu::BindGroupEntry {
                                    binding: b.binding,
                                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                        buffer: &self.buffers[&b.buffer],
                                        offset: b.offset,
                                        size: std::num::NonZeroU64::new(*size),
                                    }),
                                })
                                .collect();
                            let layout = p.pipeline.get_bind_group_layout(g);
                            let bg = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                                label: None,
                                layout: &layout,
                                entries: &entries,
                            });
                            (g, bg)
                        })
                        .collect();
                    {
                        let mut pass = enc.begin_compute_pass(&Default::default());
                        pass.set_pipeline(&p.pipeline);
                        for (g, bg) in &bind_groups {
                            pass.set_bind_group(*g, bg, &[]);
                        }
                        let [x, y, z] = d.workgroups;
                        pass.dispatch_workgroups(x, y, z);
                    }
                    if let Some(staging) = &staging {
                        for (b, size, _) in binds.iter().filter(|b| b.2) {
                            enc.copy_buffer_to_buffer(
                                &self.buffers[&b.buffer],
                                b.offset,
                                staging,
                                at,
                                *size,
                            );
                            at += size;
                        }
                    }
                }
                self.queue.submit([enc.finish()])
            },
        )?;
        let chain = |bytes: &[u8], chain: &mut [u8; 32], hashes: &mut Vec<[u8; 32]>, n0: u64| {
            let mut at = 0usize;
            for (i, (d, binds)) in dispatches.iter().zip(checked).enumerate() {
                let mut h = Sha256::new();
                h.update(*chain);
                h.update((n0 + i as u64).to_le_bytes());
                h.update(self.pipelines[&d.pipeline].code_hash);
                for (b, size, _) in binds.iter().filter(|b| b.2) {
                    h.update(b.group.to_le_bytes());
                    h.update(b.binding.to_le_bytes());
                    h.update(size.to_le_bytes());
                    h.update(&bytes[at..at + *size as usize]);
                    at += *size as usize;
                }
                *chain = h.finalize().into();
                hashes.push(*chain);
            }
        };
        let mut hash_chain = self.stats.hash_chain;
        let n0 = self.stats.dispatches;
        match &staging {
            Some(s) => {
                self.map_and_read(s, index, |bytes| chain(bytes, &mut hash_chain, hashes, n0))?;
                s.destroy();
            }
            None => {
                self.wait(index)?;
                chain(&[], &mut hash_chain, hashes, n0);
            }
        }
        self.stats.hash_chain = hash_chain;
        self.stats.dispatches += dispatches.len() as u64;
        Ok(())
    }
}

fn describe_bindings(bindings: &[super::proto::BindingInfo]) -> String {
    if bindings.is_empty() {
        return "none".into();
    }
    bindings
        .iter()
        .map(|b| format!("@group({}) @binding({})", b.group, b.binding))
        .collect::<Vec<_>>()
        .join(", ")
}
