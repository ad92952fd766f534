//! GPU benchmark: a 1024×1024 f32 matmul through the sandbox (the `gpu-matmul` sample: `.npy` inputs
//! read in the job, buffers uploaded through the GPU worker, the shader dispatched, the written range
//! hashed, C read back and written as `.npy`) against the same shader run by a native `wgpu` program on
//! the same adapter, in this process, runs alternating.
//!
//! Both sides start cold each run, as a job and a program do: the sandbox side starts its GPU worker
//! (process, adapter, device); the native side selects the adapter and creates a device. The
//! sandbox's C must equal the native C bit for bit.
//!
//! Run with: `cargo bench -p netmind-host --bench gpu` (`NETMIND_BENCH_N=2048` for another size).

use std::time::{Duration, Instant};

use netmind_host::gpu::{WorkerCommand, probe};
use netmind_host::{GpuConfig, JobLimits, RunOptions, Runtime, SandboxConfig};
use netmind_sample_gpu_matmul as mm;
use netmind_samples_artifacts as art;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A 2-D little-endian f32 `.npy` (version 1).
fn npy(rows: usize, cols: usize, data: &[f32]) -> Vec<u8> {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(data.iter().flat_map(|x| x.to_le_bytes()));
    out
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// The same shader as a plain wgpu program: adapter, device, buffers, upload, dispatch, read back.
fn native(a: &[f32], b: &[f32], n: usize) -> (Vec<f32>, Duration) {
    let t = Instant::now();
    let adapter = probe::select_adapter(None).expect("adapter");
    let (device, queue) = probe::open(&adapter).expect("device");
    let size = (n * n * 4) as u64;
    let k = probe::Kernel::new(&device, mm::MATMUL_WGSL, &[16, size, size, size]);
    let dims: Vec<u8> = mm::dims(n, n, n)
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    queue.write_buffer(&k.buffers[0], 0, &dims);
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    queue.write_buffer(&k.buffers[1], 0, &bytes(a));
    queue.write_buffer(&k.buffers[2], 0, &bytes(b));
    let (x, y, z) = mm::workgroups(n, n);
    k.run(&device, &queue, [x, y, z]);
    let c = f32s(&probe::read_back(&device, &queue, &k.buffers[3]));
    (c, t.elapsed())
}

fn main() {
    let n: usize = std::env::var("NETMIND_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let runs = 5;
    if probe::adapters().is_empty() {
        eprintln!("no GPU adapter: install mesa-vulkan-drivers for the software one");
        std::process::exit(1);
    }
    let adapter = probe::describe(&probe::select_adapter(None).unwrap());
    println!(
        "adapter: {} ({}, {})",
        adapter.name, adapter.backend, adapter.device_type
    );

    let a = mm::matrix(n, n, 1);
    let b = mm::matrix(n, n, 2);
    let input = tempfile::tempdir().unwrap();
    std::fs::write(input.path().join("a.npy"), npy(n, n, &a)).unwrap();
    std::fs::write(input.path().join("b.npy"), npy(n, n, &b)).unwrap();

    let rt = Runtime::new(SandboxConfig {
        gpu: GpuConfig {
            worker: Some(WorkerCommand {
                program: env!("CARGO_BIN_EXE_netmind-gpu-worker").into(),
                args: Vec::new(),
                env: Vec::new(),
            }),
            ..GpuConfig::default()
        },
        ..SandboxConfig::default()
    })
    .unwrap();
    let job = rt.load(&std::fs::read(art::GPU_MATMUL).unwrap()).unwrap();
    let sandbox = || {
        let out = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let report = job
            .run(&RunOptions {
                args: vec!["gpu-matmul".into()],
                input_dir: Some(input.path().into()),
                output_dir: out.path().into(),
                limits: JobLimits {
                    memory_bytes: 1 << 30,
                    wall_time: Duration::from_secs(600),
                    cpu_time: Duration::from_secs(600),
                    output_bytes: 1 << 30,
                    ..JobLimits::default()
                },
                ..RunOptions::default()
            })
            .unwrap();
        let took = t.elapsed();
        assert!(
            report.success(),
            "{:?}: {}",
            report.termination,
            String::from_utf8_lossy(&report.stderr)
        );
        let c = std::fs::read(out.path().join("c.npy")).unwrap();
        let header = 10 + usize::from(u16::from_le_bytes([c[8], c[9]]));
        (f32s(&c[header..]), took, report.gpu.time)
    };

    // Warm-up both (shader caches, page faults), and check they agree.
    let (c_native, _) = native(&a, &b, n);
    let (c_sandbox, _, _) = sandbox();
    assert_eq!(c_native.len(), n * n);
    assert!(
        c_native
            .iter()
            .zip(&c_sandbox)
            .all(|(x, y)| x.to_bits() == y.to_bits()),
        "the sandbox and the native program disagree"
    );
    let (mut tn, mut ts, mut tg) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        tn.push(native(&a, &b, n).1);
        let (_, t, g) = sandbox();
        ts.push(t);
        tg.push(g);
    }
    let (n_med, s_med, g_med) = (median(tn), median(ts), median(tg));
    let flops = 2.0 * (n as f64).powi(3);
    println!("f32 matmul {n}×{n}, median of {runs} alternating runs, each from a cold device:");
    println!(
        "  native wgpu program   {:9.1} ms  {:7.2} GFLOPS",
        n_med.as_secs_f64() * 1e3,
        flops / n_med.as_secs_f64() / 1e9
    );
    println!(
        "  through the sandbox   {:9.1} ms  {:7.2} GFLOPS  (GPU time charged to the job {:.1} ms)",
        s_med.as_secs_f64() * 1e3,
        flops / s_med.as_secs_f64() / 1e9,
        g_med.as_secs_f64() * 1e3
    );
    println!(
        "  sandbox / native      {:9.3}x  (target <= 1.1x)",
        s_med.as_secs_f64() / n_med.as_secs_f64()
    );
}
