//! `netmind host`: what this machine offers as a NetMind host.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use crate::nn::NnArgs;

#[derive(Debug, Subcommand)]
pub(crate) enum HostCommand {
    /// Show this machine's capabilities: CPU cores, memory, and the wasi-nn
    /// backends (encodings, targets, versions) and registered models that
    /// offers advertise. Checks that ONNX Runtime loads when it is asked for.
    Info {
        #[command(flatten)]
        nn: NnArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the GPU adapters jobs can use, with their limits and features, and measure each one
    /// (f32 matmul GFLOPS, memory bandwidth): what offers advertise.
    Gpu(crate::gpu::GpuListArgs),
    /// Run the host daemon: offer this machine's slots on a market, run the
    /// jobs it is assigned in the sandbox, and return signed receipts.
    Run(Box<crate::daemon::HostRunArgs>),
    /// What the host daemon is doing and why: working or yielding to the
    /// machine's owner (and the load that decided it), its slots, offer and
    /// running deals. Exits 3 when no daemon runs with that data directory.
    Status(crate::daemon::owner::StatusArgs),
    /// The GPU worker the sandbox starts for a job (internal; speaks a binary protocol on stdio).
    #[command(hide = true)]
    GpuWorker,
}

pub(crate) fn host(cmd: HostCommand) -> Result<ExitCode> {
    match cmd {
        HostCommand::Info { nn, json } => info(&nn, json),
        HostCommand::Gpu(args) => crate::gpu::list(&args),
        HostCommand::GpuWorker => Ok(netmind_host::gpu::worker::main()),
        HostCommand::Run(args) => crate::daemon::run(*args),
        HostCommand::Status(args) => crate::daemon::owner::status(&args),
    }
}

/// Total memory from `/proc/meminfo`, when there is one.
pub(crate) fn total_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn info(nn: &NnArgs, as_json: bool) -> Result<ExitCode> {
    let host = nn.build()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory = total_memory();
    let backends = host.capabilities();
    let models = host.registered();
    if as_json {
        let caps = json!({
            "cpu_cores": cores,
            "memory_bytes": memory,
            "wasi_nn": {
                "encodings": host.encodings(),
                "backends": backends,
                "models": models,
            },
        });
        println!("{}", serde_json::to_string_pretty(&caps)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("cpu cores    {cores}");
    if let Some(m) = memory {
        println!("memory       {}", netmind_host::limits::bytes(m));
    }
    for b in &backends {
        let encodings: Vec<&str> = b.encodings.iter().map(|e| e.as_str()).collect();
        let targets: Vec<&str> = b.targets.iter().map(|t| t.as_str()).collect();
        println!(
            "wasi-nn      {} {} ({} on {})",
            b.name,
            b.version,
            encodings.join(", "),
            targets.join(", ")
        );
    }
    for m in &models {
        println!(
            "model        {} sha256:{} {} on {}",
            m.name.as_deref().unwrap_or("-"),
            m.sha256,
            netmind_host::limits::bytes(m.bytes),
            m.backend
        );
    }
    Ok(ExitCode::SUCCESS)
}
