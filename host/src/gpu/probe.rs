//! What GPU a host has: its adapters with their limits and features, and a short measured benchmark
//! (f32 matrix multiply GFLOPS and memory bandwidth) that goes into offers.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::GpuError;
use super::proto::AdapterDesc;

/// Every adapter wgpu finds (honouring `WGPU_BACKEND`), best first: discrete, integrated, virtual,
/// then software; native APIs (Vulkan, Metal, DX12) before GL.
pub fn adapters() -> Vec<wgpu::Adapter> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.flags = wgpu::InstanceFlags::empty();
    let desc = desc.with_env();
    let backends = desc.backends;
    let instance = wgpu::Instance::new(desc);
    let mut list = pollster::block_on(instance.enumerate_adapters(backends));
    list.sort_by_key(|a| {
        let info = a.get_info();
        let kind = match info.device_type {
            wgpu::DeviceType::DiscreteGpu => 0,
            wgpu::DeviceType::IntegratedGpu => 1,
            wgpu::DeviceType::VirtualGpu => 2,
            wgpu::DeviceType::Cpu => 3,
            wgpu::DeviceType::Other => 4,
        };
        (kind, info.backend == wgpu::Backend::Gl)
    });
    list
}

/// The adapter `choice` names (an index into [`adapters`] or a case-insensitive name substring), or
/// the best one.
pub fn select_adapter(choice: Option<&str>) -> Result<wgpu::Adapter, GpuError> {
    let list = adapters();
    if list.is_empty() {
        return Err(GpuError::NoAdapter(
            "this host has no GPU adapter (no Vulkan, Metal, DX12 or GL driver answered); on Linux \
             without a GPU, Mesa's software Vulkan (`apt install mesa-vulkan-drivers`) provides one"
                .into(),
        ));
    }
    let Some(choice) = choice else {
        return Ok(list.into_iter().next().expect("not empty"));
    };
    let names: Vec<String> = list.iter().map(|a| a.get_info().name).collect();
    let found = match choice.parse::<usize>() {
        Ok(i) => list.into_iter().nth(i),
        Err(_) => {
            let want = choice.to_lowercase();
            list.into_iter()
                .find(|a| a.get_info().name.to_lowercase().contains(&want))
        }
    };
    found.ok_or_else(|| {
        GpuError::NoAdapter(format!(
            "no adapter matches `{choice}`; this host has: {}",
            names
                .iter()
                .enumerate()
                .map(|(i, n)| format!("{i}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// The adapter as the interface describes it.
pub fn describe(adapter: &wgpu::Adapter) -> AdapterDesc {
    let info = adapter.get_info();
    let device_type = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => "discrete-gpu",
        wgpu::DeviceType::IntegratedGpu => "integrated-gpu",
        wgpu::DeviceType::VirtualGpu => "virtual-gpu",
        wgpu::DeviceType::Cpu => "cpu",
        wgpu::DeviceType::Other => "other",
    };
    let lower = info.name.to_lowercase();
    let is_software = info.device_type == wgpu::DeviceType::Cpu
        || ["llvmpipe", "lavapipe", "swiftshader", "warp", "softpipe"]
            .iter()
            .any(|s| lower.contains(s));
    AdapterDesc {
        name: info.name,
        backend: info.backend.to_str().to_owned(),
        device_type: device_type.to_owned(),
        vendor: info.vendor,
        device: info.device,
        driver: info.driver,
        driver_info: info.driver_info,
        is_software,
    }
}

/// An adapter with the limits and features that matter for compute.
#[derive(Debug, Clone, Serialize)]
pub struct AdapterReport {
    /// Position in [`adapters`] (what `--gpu-adapter N` takes).
    pub index: usize,
    /// The adapter.
    #[serde(flatten)]
    pub adapter: AdapterDesc,
    /// Compute limits, by wgpu's names.
    pub limits: Vec<(&'static str, u64)>,
    /// Features, by wgpu's names.
    pub features: Vec<String>,
    /// The measured benchmark, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub benchmark: Option<Benchmark>,
}

/// Every adapter of this host, described.
pub fn report() -> Vec<AdapterReport> {
    adapters()
        .iter()
        .enumerate()
        .map(|(index, a)| {
            let l = a.limits();
            AdapterReport {
                index,
                adapter: describe(a),
                limits: vec![
                    ("max_buffer_size", l.max_buffer_size),
                    (
                        "max_storage_buffer_binding_size",
                        l.max_storage_buffer_binding_size,
                    ),
                    (
                        "max_uniform_buffer_binding_size",
                        l.max_uniform_buffer_binding_size,
                    ),
                    (
                        "max_compute_workgroup_storage_size",
                        l.max_compute_workgroup_storage_size.into(),
                    ),
                    (
                        "max_compute_invocations_per_workgroup",
                        l.max_compute_invocations_per_workgroup.into(),
                    ),
                    (
                        "max_compute_workgroup_size_x",
                        l.max_compute_workgroup_size_x.into(),
                    ),
                    (
                        "max_compute_workgroup_size_y",
                        l.max_compute_workgroup_size_y.into(),
                    ),
                    (
                        "max_compute_workgroup_size_z",
                        l.max_compute_workgroup_size_z.into(),
                    ),
                    (
                        "max_compute_workgroups_per_dimension",
                        l.max_compute_workgroups_per_dimension.into(),
                    ),
                    (
                        "max_storage_buffers_per_shader_stage",
                        l.max_storage_buffers_per_shader_stage.into(),
                    ),
                    ("max_bind_groups", l.max_bind_groups.into()),
                    (
                        "min_storage_buffer_offset_alignment",
                        l.min_storage_buffer_offset_alignment.into(),
                    ),
                ],
                features: a
                    .features()
                    .iter_names()
                    .map(|(n, _)| n.to_owned())
                    .collect(),
                benchmark: None,
            }
        })
        .collect()
}

/// A short measured benchmark of one adapter.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Benchmark {
    /// Matrix size of the f32 multiply.
    pub matmul_n: u32,
    /// f32 GFLOPS of the tiled matrix multiply (best of the runs).
    pub matmul_gflops: f64,
    /// Bytes copied by the bandwidth kernel per run.
    pub copy_bytes: u64,
    /// Memory bandwidth of a storage-to-storage copy kernel, GB/s (read + write, best of the runs).
    pub bandwidth_gbps: f64,
}

/// The tiled f32 matrix multiply the benchmark (and `benches/gpu.rs`) times: C = A × B for N×N
/// row-major matrices, N a multiple of 16, 16×16 tiles in workgroup memory, each invocation computing
/// a 1×4 strip.
pub const MATMUL_WGSL: &str = include_str!("matmul.wgsl");

const COPY_WGSL: &str = "
@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
    let i = id.x + id.y * n.x * 256u;
    if i < arrayLength(&src) { dst[i] = src[i]; }
}";

/// Runs the benchmark on `adapter`: an `n`×`n` matmul (n a multiple of 64) and a copy of `copy_mib`
/// MiB, each `runs` times after a warm-up, best run reported.
pub fn benchmark(
    adapter: &wgpu::Adapter,
    n: u32,
    copy_mib: u32,
    runs: u32,
) -> Result<Benchmark, GpuError> {
    let (device, queue) = open(adapter)?;
    let time = |f: &dyn Fn()| -> Duration {
        f();
        let mut best = Duration::MAX;
        for _ in 0..runs.max(1) {
            let t = Instant::now();
            f();
            best = best.min(t.elapsed());
        }
        best
    };
    let mm = Kernel::new(
        &device,
        MATMUL_WGSL,
        &[
            u64::from(n) * u64::from(n) * 4,
            u64::from(n) * u64::from(n) * 4,
            u64::from(n) * u64::from(n) * 4,
            16,
        ],
    );
    queue.write_buffer(
        &mm.buffers[3],
        0,
        &[n.to_le_bytes(), n.to_le_bytes(), n.to_le_bytes(), [0; 4]].concat(),
    );
    let mm_time = time(&|| mm.run(&device, &queue, [n / 64, n / 16, 1]));
    let bytes = u64::from(copy_mib) << 20;
    let copy = Kernel::new(&device, COPY_WGSL, &[bytes, bytes]);
    let groups = u32::try_from(bytes / 16 / 256).unwrap_or(u32::MAX);
    let (gx, gy) = if groups > 65535 {
        (65535u32.min(groups), groups.div_ceil(65535))
    } else {
        (groups, 1)
    };
    let copy_time = time(&|| copy.run(&device, &queue, [gx, gy, 1]));
    Ok(Benchmark {
        matmul_n: n,
        matmul_gflops: 2.0 * f64::from(n).powi(3) / mm_time.as_secs_f64() / 1e9,
        copy_bytes: bytes,
        bandwidth_gbps: 2.0 * bytes as f64 / copy_time.as_secs_f64() / 1e9,
    })
}

/// One compute pipeline with its buffers bound in order at group 0 (the last one as uniform when
/// the shader says so): the native baseline the benchmarks compare the sandbox with.
#[derive(Debug)]
pub struct Kernel {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    /// The buffers, in binding order.
    pub buffers: Vec<wgpu::Buffer>,
}

impl Kernel {
    /// Compiles `main` of `wgsl` and creates zeroed buffers of `sizes` bytes bound at 0, 1, ...
    pub fn new(device: &wgpu::Device, wgsl: &str, sizes: &[u64]) -> Self {
        use wgpu::BufferUsages as U;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: None,
            source: wgpu::ShaderSource::Wgsl(wgsl.into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: None,
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let buffers: Vec<_> = sizes
            .iter()
            .map(|&size| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: None,
                    size,
                    usage: U::STORAGE | U::UNIFORM | U::COPY_DST | U::COPY_SRC,
                    mapped_at_creation: false,
                })
            })
            .collect();
        let entries: Vec<_> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Self {
            pipeline,
            bind_group,
            buffers,
        }
    }

    /// Dispatches once and waits.
    pub fn run(&self, device: &wgpu::Device, queue: &wgpu::Queue, workgroups: [u32; 3]) {
        let mut enc = device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &self.bind_group, &[]);
            pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
        }
        let index = queue.submit([enc.finish()]);
        let _ = device.poll(wgpu::PollType::Wait {
            submission_index: Some(index),
            timeout: None,
        });
    }
}

/// Opens `adapter` with its full limits (what a native program would do).
pub fn open(adapter: &wgpu::Adapter) -> Result<(wgpu::Device, wgpu::Queue), GpuError> {
    pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("netmind-native"),
        required_limits: adapter.limits(),
        ..Default::default()
    }))
    .map_err(|e| GpuError::NoAdapter(e.to_string()))
}

/// Copies `buffer` back to the CPU and waits.
pub fn read_back(device: &wgpu::Device, queue: &wgpu::Queue, buffer: &wgpu::Buffer) -> Vec<u8> {
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: buffer.size(),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = device.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(buffer, 0, &staging, 0, buffer.size());
    let index = queue.submit([enc.finish()]);
    staging.map_async(wgpu::MapMode::Read, .., |_| {});
    let _ = device.poll(wgpu::PollType::Wait {
        submission_index: Some(index),
        timeout: None,
    });
    let bytes = staging
        .get_mapped_range(..)
        .map(|v| v.to_vec())
        .unwrap_or_default();
    staging.unmap();
    bytes
}
