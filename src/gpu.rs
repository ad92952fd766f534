//! GPU flags of `netmind run`, `netmind host gpu` (adapters, limits, benchmark) and the hidden
//! `netmind host gpu-worker` that the sandbox starts for each job that uses the GPU.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use bytesize::ByteSize;
use clap::{Args, ValueEnum};
use netmind_host::gpu::{GpuConfig, WorkerCommand, probe};

/// Whether jobs may use the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GpuMode {
    /// Use the best adapter there is (a software one when there is no GPU).
    Auto,
    /// No GPU: jobs' GPU calls fail with `no-adapter`.
    Off,
}

/// GPU options of `netmind run`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "GPU")]
pub(crate) struct GpuArgs {
    /// Whether the job may use the GPU.
    #[arg(long, value_enum, default_value = "auto", env = "NETMIND_GPU")]
    gpu: GpuMode,
    /// The adapter: its index in `netmind host gpu` or part of its name (default: the best).
    #[arg(long, env = "NETMIND_GPU_ADAPTER")]
    gpu_adapter: Option<String>,
    /// GPU memory the job may hold, e.g. `2GiB` (default: the manifest's, else 1 GiB).
    #[arg(long)]
    gpu_memory: Option<ByteSize>,
    /// GPU time the job may use, e.g. `30s` (default: the manifest's, else 60s).
    #[arg(long, value_parser = humantime::parse_duration)]
    gpu_time: Option<Duration>,
}

impl GpuArgs {
    /// The sandbox's GPU configuration; the worker is this very program (`netmind host gpu-worker`).
    pub(crate) fn config(&self) -> Result<GpuConfig> {
        Ok(GpuConfig {
            enabled: self.gpu == GpuMode::Auto,
            adapter: self.gpu_adapter.clone(),
            worker: Some(self_worker()?),
            ..GpuConfig::default()
        })
    }

    /// What a host offers: whether the GPU is used, the adapter asked for,
    /// and the GPU memory a job may hold (`--gpu-memory`, else 1 GiB).
    pub(crate) fn offered(&self) -> (bool, Option<&str>, u64) {
        (
            self.gpu == GpuMode::Auto,
            self.gpu_adapter.as_deref(),
            self.gpu_memory.map_or(1 << 30, |m| m.as_u64()),
        )
    }

    /// Applies `--gpu-memory` and `--gpu-time`.
    pub(crate) fn apply(&self, limits: &mut netmind_host::GpuLimits) {
        if let Some(m) = self.gpu_memory {
            limits.memory_bytes = m.as_u64();
        }
        if let Some(t) = self.gpu_time {
            limits.time = t;
        }
    }

    /// Refuses early, with a clear message, a job whose manifest requires a GPU this run cannot give.
    pub(crate) fn check_required(&self, required: bool) -> Result<()> {
        if !required {
            return Ok(());
        }
        if self.gpu == GpuMode::Off {
            bail!(
                "this job needs a GPU (`[resources.gpu] required = true`) but `--gpu off` was given"
            );
        }
        if let Err(e) = probe::select_adapter(self.gpu_adapter.as_deref()) {
            bail!("this job needs a GPU (`[resources.gpu] required = true`): {e}");
        }
        Ok(())
    }
}

fn self_worker() -> Result<WorkerCommand> {
    Ok(WorkerCommand {
        program: std::env::current_exe()?,
        args: vec!["host".into(), "gpu-worker".into()],
        env: Vec::new(),
    })
}

/// `netmind host gpu`.
#[derive(Debug, Args)]
pub(crate) struct GpuListArgs {
    /// Skip the measured benchmark (it takes a few seconds on a software adapter).
    #[arg(long)]
    no_bench: bool,
    /// Matrix size of the benchmark's f32 multiply (a multiple of 64).
    #[arg(long, default_value_t = 1024)]
    bench_n: u32,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn list(args: &GpuListArgs) -> Result<ExitCode> {
    if args.bench_n == 0 || !args.bench_n.is_multiple_of(64) {
        bail!(
            "--bench-n {} must be a positive multiple of 64",
            args.bench_n
        );
    }
    let adapters = probe::adapters();
    let mut reports = probe::report();
    if !args.no_bench {
        let bar = indicatif::ProgressBar::new_spinner();
        for (r, a) in reports.iter_mut().zip(&adapters) {
            bar.set_message(format!("benchmarking {}", r.adapter.name));
            bar.enable_steady_tick(Duration::from_millis(100));
            match probe::benchmark(a, args.bench_n, 64, 3) {
                Ok(b) => r.benchmark = Some(b),
                Err(e) => bar
                    .suspend(|| eprintln!("warning: benchmark of {} failed: {e}", r.adapter.name)),
            }
        }
        bar.finish_and_clear();
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(ExitCode::SUCCESS);
    }
    if reports.is_empty() {
        println!(
            "no GPU adapter: jobs that need a GPU cannot run here (on Linux without a GPU, \
             `apt install mesa-vulkan-drivers` gives a software Vulkan adapter)"
        );
        return Ok(ExitCode::SUCCESS);
    }
    for r in &reports {
        let a = &r.adapter;
        println!(
            "[{}] {} ({}, {}{})",
            r.index,
            a.name,
            a.backend,
            a.device_type,
            if a.is_software { ", software" } else { "" }
        );
        println!("    driver     {} {}", a.driver, a.driver_info);
        println!(
            "    pci        vendor {:#06x} device {:#06x}",
            a.vendor, a.device
        );
        for (name, value) in &r.limits {
            println!("    {name:<40} {value}");
        }
        println!("    features   {}", r.features.join(", "));
        if let Some(b) = &r.benchmark {
            println!(
                "    benchmark  f32 matmul {n}×{n}: {:.1} GFLOPS; copy {}: {:.1} GB/s",
                b.matmul_gflops,
                ByteSize(b.copy_bytes).display().iec(),
                b.bandwidth_gbps,
                n = b.matmul_n
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
