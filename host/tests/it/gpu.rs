//! GPU compute in jobs, on a real adapter: Mesa's software Vulkan (lavapipe) in CI, the machine's GPU
//! where there is one. `gpu_probe` (conformance/test-programs) drives the bad-input cases; the samples
//! are compared with their CPU references in `gpu_samples`.
//!
//! Without any adapter these tests are skipped locally and fail when `CI` or `NETMIND_REQUIRE_GPU`
//! is set (STYLE.md §6); `scripts/test.sh` sets the latter.

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use netmind_host::gpu::WorkerCommand;
use netmind_host::{GpuConfig, JobLimits, LimitKind, Runtime, SandboxConfig, Termination};
use netmind_samples_artifacts as artifacts;

use crate::{Ran, run_with};

/// The worker binary cargo built for these tests.
pub(crate) fn worker(env: &[(&str, &str)]) -> WorkerCommand {
    WorkerCommand {
        program: env!("CARGO_BIN_EXE_netmind-gpu-worker").into(),
        args: Vec::new(),
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

pub(crate) fn gpu_runtime(config: GpuConfig) -> Runtime {
    Runtime::new(SandboxConfig {
        gpu: config,
        pooled_jobs: 4,
        ..SandboxConfig::default()
    })
    .expect("runtime")
}

/// The runtime GPU tests share, or `None` (skip) when this machine has no adapter and `CI` is unset.
pub(crate) fn rt() -> Option<&'static Runtime> {
    static RT: OnceLock<Option<Runtime>> = OnceLock::new();
    RT.get_or_init(|| {
        if netmind_host::gpu::probe::adapters().is_empty() {
            assert!(
                std::env::var_os("CI").is_none()
                    && std::env::var_os("NETMIND_REQUIRE_GPU").is_none(),
                "no GPU adapter: install mesa-vulkan-drivers (scripts/test.sh does)"
            );
            eprintln!("skipping GPU tests: no adapter on this machine");
            return None;
        }
        Some(gpu_runtime(GpuConfig {
            worker: Some(worker(&[])),
            ..GpuConfig::default()
        }))
    })
    .as_ref()
}

/// GPU tests take turns: two jobs on a software adapter with 2 cores only slow each other down, and
/// the worker-count checks need to see only their own job's worker.
pub(crate) fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn gpu_limits() -> JobLimits {
    JobLimits {
        memory_bytes: 256 << 20,
        wall_time: Duration::from_secs(60),
        cpu_time: Duration::from_secs(60),
        ..JobLimits::default()
    }
}

fn probe_on(rt: &Runtime, case: &str, limits: JobLimits) -> Ran {
    run_with(rt, artifacts::TP_GPU_PROBE, &[case], limits, |_| {})
}

/// Runs a probe case and returns its `result:` lines.
fn probe(rt: &Runtime, case: &str) -> (Ran, Vec<String>) {
    let ran = probe_on(rt, case, gpu_limits());
    let lines = results(&ran);
    (ran, lines)
}

fn results(ran: &Ran) -> Vec<String> {
    ran.stdout()
        .lines()
        .filter_map(|l| l.strip_prefix("result: "))
        .map(str::to_owned)
        .collect()
}

/// Live GPU worker processes that are children of this test process.
fn live_workers() -> usize {
    let me = std::process::id().to_string();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid ...
            let Some((comm, rest)) = stat.split_once(") ") else {
                return false;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next().unwrap_or("");
            let ppid = fields.next().unwrap_or("");
            comm.contains("netmind-gpu-wor") && ppid == me && state != "Z"
        })
        .count()
}

fn assert_error(lines: &[String], kind: &str, needle: &str) {
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("err {kind}")) && l.contains(needle)),
        "expected an `{kind}` error mentioning {needle:?}; got {lines:#?}"
    );
}

#[test]
fn adapter_and_limits_are_reported_and_the_worker_ends_with_the_job() {
    let Some(rt) = rt() else { return };
    let _s = serial();
    let (ran, lines) = probe(rt, "info");
    assert!(
        ran.report.success(),
        "{:?}\n{lines:?}",
        ran.report.termination
    );
    let adapter = ran.report.gpu.adapter.expect("the job used the GPU");
    assert!(
        lines.iter().any(|l| l.contains(&adapter)),
        "the job saw another adapter than the report names: {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("max-buffer-size")),
        "{lines:?}"
    );
    assert_eq!(live_workers(), 0, "the job's GPU worker outlived it");
}

#[test]
fn bad_shaders_and_bindings_get_precise_errors() {
    let Some(rt) = rt() else { return };
    let _s = serial();
    for (case, kind, needle) in [
        ("invalid-wgsl", "invalid-shader", ""),
        ("vertex-shader", "unsupported", "@vertex"),
        ("fragment-shader", "unsupported", "@fragment"),
        ("no-such-entry", "binding-mismatch", "no entry point"),
        ("texture-binding", "unsupported", "texture"),
        ("missing-binding", "binding-mismatch", "does not bind it"),
        ("extra-binding", "binding-mismatch", "does not use it"),
        ("too-small-binding", "binding-mismatch", "at least"),
        ("bad-offset", "out-of-range", ""),
        ("oversize-buffer", "limit-exceeded", "larger than"),
        ("too-many-workgroups", "limit-exceeded", "workgroups"),
        ("huge-workgroup-size", "limit-exceeded", "@workgroup_size"),
        ("alias", "conflict", "writable"),
    ] {
        let (ran, lines) = probe(rt, case);
        assert_error(&lines, kind, needle);
        assert!(
            ran.report.gpu.failure.is_none(),
            "{case}: a refused call must not end the GPU context"
        );
    }
    assert_eq!(live_workers(), 0);
}

#[test]
fn quotas_hold_and_everything_is_freed() {
    let Some(rt) = rt() else { return };
    let _s = serial();
    let mut limits = gpu_limits();
    limits.gpu.memory_bytes = 64 << 20;
    limits.gpu.pipelines = 8;
    limits.gpu.dispatches = 50;
    for case in ["quota", "pipelines", "dispatch-quota"] {
        let ran = probe_on(rt, case, limits.clone());
        let lines = results(&ran);
        assert_error(&lines, "quota-exceeded", "");
        if case == "quota" {
            assert!(
                ran.report.gpu.peak_bytes <= 64 << 20,
                "peak {} over the quota",
                ran.report.gpu.peak_bytes
            );
        }
    }
    // A job that leaks buffers and pipelines on purpose: the worker goes with the job.
    let ran = probe_on(rt, "leak", limits);
    assert!(ran.report.success(), "{:?}", ran.report.termination);
    assert_eq!(live_workers(), 0, "leaked GPU objects outlived the job");
}

#[test]
fn a_shader_that_never_ends_is_stopped_and_the_host_goes_on() {
    let Some(rt) = rt() else { return };
    let _s = serial();
    let mut limits = gpu_limits();
    limits.gpu.time = Duration::from_secs(2);
    let started = Instant::now();
    let ran = probe_on(rt, "infinite-loop", limits);
    let took = started.elapsed();
    let lines = results(&ran);
    assert_error(&lines, "timeout", "GPU time budget");
    // The next call gets the same error: the context is gone.
    assert!(
        lines
            .iter()
            .filter(|l| l.starts_with("err timeout"))
            .count()
            >= 2,
        "{lines:?}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(
        ran.report
            .gpu
            .failure
            .as_deref()
            .unwrap_or("")
            .contains("timeout")
    );
    assert_eq!(live_workers(), 0, "the stuck worker was not killed");

    // The wall-time limit stops GPU work too, and ends the job.
    let mut limits = gpu_limits();
    limits.wall_time = Duration::from_secs(3);
    let ran = probe_on(rt, "infinite-loop", limits);
    assert!(
        matches!(
            ran.report.termination,
            Termination::LimitExceeded(LimitKind::WallTime(_))
        ) || results(&ran).iter().any(|l| l.contains("wall-time")),
        "{:?} {:?}",
        ran.report.termination,
        results(&ran)
    );
    assert_eq!(live_workers(), 0);

    // The host is healthy: the next job computes correctly.
    let (ran, lines) = probe(rt, "sum");
    assert!(
        ran.report.success(),
        "{:?} {lines:?}",
        ran.report.termination
    );
    assert!(lines.iter().any(|l| l.starts_with("ok")), "{lines:?}");
}

#[test]
fn the_hash_chain_is_the_same_on_every_run() {
    let Some(rt) = rt() else { return };
    let _s = serial();
    let (a, la) = probe(rt, "hash");
    let (b, lb) = probe(rt, "hash");
    assert!(a.report.success() && b.report.success(), "{la:?} {lb:?}");
    let chain = a
        .report
        .gpu
        .hash_chain
        .clone()
        .expect("dispatches were hashed");
    assert_eq!(Some(&chain), b.report.gpu.hash_chain.as_ref());
    assert_eq!(la, lb);
    assert!(la.iter().any(|l| l.contains(&chain)), "{la:?} vs {chain}");
    assert!(a.report.gpu.dispatches > 0 && a.report.gpu.time > Duration::ZERO);
}

#[test]
fn without_an_adapter_jobs_get_a_clear_error() {
    let _s = serial();
    // No Vulkan driver and no GL: the worker finds no adapter at all.
    let none = gpu_runtime(GpuConfig {
        worker: Some(worker(&[
            ("VK_DRIVER_FILES", "/nonexistent.json"),
            ("VK_ICD_FILENAMES", "/nonexistent.json"),
            ("WGPU_BACKEND", "vulkan"),
        ])),
        ..GpuConfig::default()
    });
    let ran = probe_on(&none, "info", gpu_limits());
    assert_error(&results(&ran), "no-adapter", "no GPU adapter");
    let off = gpu_runtime(GpuConfig {
        enabled: false,
        ..GpuConfig::default()
    });
    let ran = probe_on(&off, "info", gpu_limits());
    assert_error(&results(&ran), "no-adapter", "off");
    let missing = gpu_runtime(GpuConfig {
        worker: Some(WorkerCommand {
            program: "/nonexistent/netmind-gpu-worker".into(),
            args: Vec::new(),
            env: Vec::new(),
        }),
        ..GpuConfig::default()
    });
    let ran = probe_on(&missing, "info", gpu_limits());
    assert_error(
        &results(&ran),
        "no-adapter",
        "could not start the GPU worker",
    );
}

#[test]
fn a_worker_that_dies_is_a_lost_device_for_that_job_only() {
    let Some(rt) = rt() else { return };
    let _s = serial();
    let mut limits = gpu_limits();
    limits.gpu.time = Duration::from_secs(30);
    let killer = std::thread::spawn(|| {
        // Kill the job's worker once it is busy with the endless shader.
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(500));
            if kill_workers() > 0 {
                return true;
            }
        }
        false
    });
    let ran = probe_on(rt, "infinite-loop", limits);
    assert!(killer.join().unwrap(), "no worker to kill");
    assert_error(&results(&ran), "device-lost", "worker process ended");
    let (ran, lines) = probe(rt, "sum");
    assert!(ran.report.success(), "{lines:?}");
}

/// SIGKILLs this process's GPU workers; returns how many.
fn kill_workers() -> usize {
    let me = std::process::id().to_string();
    let mut n = 0;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.split_once(") ") else {
            continue;
        };
        let ppid = rest.split_whitespace().nth(1).unwrap_or("");
        if head.contains("netmind-gpu-wor") && ppid == me {
            let pid = e.file_name().to_string_lossy().into_owned();
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid])
                .status();
            n += 1;
        }
    }
    n
}

/// The worker on its own, through the framed protocol: what the sandbox sends for a job.
#[test]
fn the_worker_runs_a_dispatch_through_its_protocol() {
    use netmind_host::gpu::proto::{self, Outcome, Reply, Request};
    use std::process::{Command, Stdio};

    let Some(_) = rt() else { return };
    let _s = serial();
    let mut child = Command::new(env!("CARGO_BIN_EXE_netmind-gpu-worker"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut ask = |req: Request, payload: &[u8]| -> (Outcome, Vec<u8>) {
        proto::write_frame(&mut stdin, &req, payload).unwrap();
        let (reply, data): (Reply, Vec<u8>) = proto::read_frame(&mut stdout).unwrap().unwrap();
        (reply.outcome, data)
    };
    let quota = netmind_host::GpuLimits::default();
    let (ready, _) = ask(
        Request::Init {
            adapter: None,
            quota: proto::Quota {
                max_total_bytes: quota.memory_bytes,
                max_buffer_size: quota.max_buffer_bytes,
                max_buffers: quota.buffers,
                max_pipelines: quota.pipelines,
                max_dispatches: quota.dispatches,
                max_dispatches_per_submit: quota.dispatches_per_submit,
                max_shader_bytes: quota.shader_bytes,
                max_invocations_per_dispatch: quota.invocations_per_dispatch,
                gpu_time_ms: 1000,
            },
        },
        &[],
    );
    assert!(matches!(ready, Outcome::Ready { .. }), "{ready:?}");
    let n = 1000u32;
    let input: Vec<u8> = (0..n).flat_map(|i| (i as f32).to_le_bytes()).collect();
    for id in [1, 2] {
        let (o, _) = ask(
            Request::CreateBuffer {
                id,
                size: u64::from(n) * 4,
            },
            &[],
        );
        assert_eq!(o, Outcome::Done);
    }
    assert_eq!(
        ask(Request::WriteBuffer { id: 1, offset: 0 }, &input).0,
        Outcome::Done
    );
    let wgsl = "@group(0) @binding(0) var<storage, read> a: array<f32>;
        @group(0) @binding(1) var<storage, read_write> b: array<f32>;
        @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
            if id.x < arrayLength(&a) { b[id.x] = a[id.x] * 3.0 + 1.0; }
        }";
    let (o, _) = ask(
        Request::CreatePipeline {
            id: 3,
            entry: "main".into(),
        },
        wgsl.as_bytes(),
    );
    assert!(
        matches!(&o, Outcome::Pipeline { workgroup_size: [64, 1, 1], bindings } if bindings.len() == 2),
        "{o:?}"
    );
    let bind = |binding, buffer| proto::Bind {
        group: 0,
        binding,
        buffer,
        offset: 0,
        size: None,
    };
    let dispatch = proto::Dispatch {
        pipeline: 3,
        bindings: vec![bind(0, 1), bind(1, 2)],
        workgroups: [n.div_ceil(64), 1, 1],
    };
    let (o, _) = ask(
        Request::Submit {
            dispatches: vec![dispatch.clone(), dispatch],
        },
        &[],
    );
    let Outcome::Submitted { hashes } = o else {
        panic!("{o:?}")
    };
    assert_eq!(hashes.len(), 2);
    assert_ne!(hashes[0], hashes[1], "each dispatch extends the chain");
    let (o, data) = ask(
        Request::ReadBuffer {
            id: 2,
            offset: 0,
            len: u64::from(n) * 4,
        },
        &[],
    );
    assert_eq!(o, Outcome::Data);
    let got: Vec<f32> = data
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let want: Vec<f32> = (0..n).map(|i| i as f32 * 3.0 + 1.0).collect();
    assert_eq!(got, want);
    // Closing stdin ends the worker at once.
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

/// The matmul `netmind host gpu` measures computes the right thing (else its GFLOPS mean nothing).
#[test]
fn the_benchmark_matmul_matches_the_cpu() {
    use netmind_host::gpu::probe;
    let Some(_) = rt() else { return };
    let _s = serial();
    let adapter = probe::select_adapter(None).unwrap();
    let (device, queue) = probe::open(&adapter).unwrap();
    // Sizes that are not multiples of the tile, to exercise the edges.
    let (m, k, n) = (37usize, 53usize, 70usize);
    let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
    let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 * 0.5).collect();
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let kernel = probe::Kernel::new(
        &device,
        probe::MATMUL_WGSL,
        &[
            (m * k * 4) as u64,
            (k * n * 4) as u64,
            (m * n * 4) as u64,
            16,
        ],
    );
    queue.write_buffer(&kernel.buffers[0], 0, &bytes(&a));
    queue.write_buffer(&kernel.buffers[1], 0, &bytes(&b));
    let dims: Vec<u8> = [m as u32, k as u32, n as u32, 0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    queue.write_buffer(&kernel.buffers[3], 0, &dims);
    kernel.run(
        &device,
        &queue,
        [n.div_ceil(64) as u32, m.div_ceil(16) as u32, 1],
    );
    let got: Vec<f32> = probe::read_back(&device, &queue, &kernel.buffers[2])
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    for i in 0..m {
        for j in 0..n {
            let want: f32 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            assert!(
                (got[i * n + j] - want).abs() <= 1e-3 * want.abs().max(1.0),
                "c[{i}][{j}] = {} != {want}",
                got[i * n + j]
            );
        }
    }
}
