//! `netmind run`: runs a job in the local sandbox, exactly as hosts do.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytesize::ByteSize;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use netmind_host::{
    JobLimits, Progress, RunObserver, RunOptions, Runtime, SandboxConfig, Termination,
};
use netmind_protocol::bundle::BundleLimits;

use crate::source;

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// A bundle file (`.nmb`), a bundle directory (with `netmind.toml`), or a `.wasm` file.
    target: PathBuf,
    /// Directory shown read-only to the job at `/input`.
    #[arg(long, short)]
    input: Option<PathBuf>,
    /// Directory the job writes at `/output` (created; must be empty). Default: a new temporary directory.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Memory limit, e.g. `512MiB` (default: the manifest's, else 256 MiB).
    #[arg(long)]
    memory: Option<ByteSize>,
    /// Wall-clock limit, e.g. `30s` (default: the manifest's, else 2m).
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// CPU time limit, e.g. `10s` (default: the manifest's, else 1m).
    #[arg(long, value_parser = humantime::parse_duration)]
    cpu_time: Option<Duration>,
    /// Meter fuel and stop the job after about N wasm instructions.
    #[arg(long)]
    fuel: Option<u64>,
    /// Fixed clocks, seeded random and canonical NaNs: reruns give the same output hash.
    #[arg(long)]
    deterministic: bool,
    /// Seed of the random generators in deterministic mode.
    #[arg(long, default_value_t = 0, requires = "deterministic")]
    seed: u64,
    /// File to feed to the job's stdin.
    #[arg(long)]
    stdin: Option<PathBuf>,
    /// Extra environment variable for the job, `KEY=VALUE` (repeatable).
    #[arg(long = "env", short = 'e', value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Where compiled jobs are cached (default: `$NETMIND_CACHE_DIR` or ~/.cache/netmind).
    #[arg(long, env = "NETMIND_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile without reading or writing the cache.
    #[arg(long)]
    no_cache: bool,
    /// Write the run summary as JSON to this file.
    #[arg(long)]
    summary_json: Option<PathBuf>,
    /// Print no summary (the job's own output still streams).
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    nn: crate::nn::NnArgs,
    #[command(flatten)]
    gpu: crate::gpu::GpuArgs,
    /// Arguments passed to the job after the manifest's own.
    #[arg(last = true)]
    args: Vec<String>,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

/// Streams the job's output to the terminal and drives a progress bar.
struct Terminal {
    bar: ProgressBar,
}

impl RunObserver for Terminal {
    fn stdout(&self, bytes: &[u8]) {
        self.bar.suspend(|| {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(bytes);
            let _ = out.flush();
        });
    }
    fn stderr(&self, bytes: &[u8]) {
        self.bar.suspend(|| {
            let _ = std::io::stderr().lock().write_all(bytes);
        });
    }
    fn progress(&self, p: &Progress) {
        self.bar.set_length(p.total);
        self.bar.set_position(p.done);
        self.bar.set_message(p.message.clone());
    }
}

pub(crate) fn run(args: RunArgs) -> Result<ExitCode> {
    let job = source::load(&args.target, &BundleLimits::default())?;
    let mut limits = job
        .manifest
        .as_ref()
        .map(|m| JobLimits::from_resources(&m.resources))
        .unwrap_or_default();
    if let Some(m) = args.memory {
        limits.memory_bytes = m.as_u64();
    }
    if let Some(t) = args.timeout {
        limits.wall_time = t;
    }
    if let Some(t) = args.cpu_time {
        limits.cpu_time = t;
    }
    if args.fuel.is_some() {
        limits.fuel = args.fuel;
    }
    args.gpu.apply(&mut limits.gpu);
    args.gpu.check_required(
        job.manifest
            .as_ref()
            .is_some_and(|m| m.resources.gpu.required),
    )?;
    let cache_dir = if args.no_cache {
        None
    } else {
        args.cache_dir
            .clone()
            .or_else(netmind_host::default_cache_dir)
            .map(|d| d.join("components"))
    };
    let nn = args.nn.build()?;
    if let Some(m) = &job.manifest {
        crate::nn::check_encodings(&nn, &m.resources.wasi_nn)?;
    }
    let runtime = Runtime::with_nn(
        SandboxConfig {
            deterministic: args.deterministic,
            fuel: limits.fuel.is_some(),
            cache_dir,
            pooled_jobs: 1,
            gpu: args.gpu.config()?,
            ..SandboxConfig::default()
        },
        nn,
    )?;
    let loaded = runtime.load(&job.wasm)?;

    let output_dir = match &args.output {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            d.clone()
        }
        None => tempfile::Builder::new()
            .prefix("netmind-run-")
            .tempdir()?
            .keep(),
    };
    let mut argv = vec![job.name.clone()];
    let mut env = Vec::new();
    if let Some(m) = &job.manifest {
        argv.extend(m.job.args.iter().cloned());
        env.extend(m.job.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    argv.extend(args.args.iter().cloned());
    env.extend(args.env.iter().cloned());
    let stdin = match &args.stdin {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?),
        None => None,
    };
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0).with_style(
            ProgressStyle::with_template("{spinner} [{elapsed}] {bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    };
    if !args.quiet {
        if let Some(id) = &job.bundle_id {
            eprintln!("bundle   {id}");
        }
        if let Some(signer) = &job.signer {
            eprintln!("signer   {signer} (signature verified)");
        }
    }
    let report = loaded.run(&RunOptions {
        args: argv,
        env,
        stdin,
        input_dir: args.input.clone(),
        assets_dir: job.assets_dir.clone(),
        output_dir: output_dir.clone(),
        limits: limits.clone(),
        seed: args.seed,
        observer: Some(Arc::new(Terminal { bar: bar.clone() })),
        cancel: None,
        pause: None,
    })?;
    bar.finish_and_clear();

    let hash = report.output_hash.map(hex::encode);
    if let Some(path) = &args.summary_json {
        let summary = serde_json::json!({
            "job": job.name,
            "bundle": job.bundle_id.map(|id| id.to_string()),
            "wasm_sha256": hex::encode(loaded.wasm_hash()),
            "status": report.termination.to_string(),
            "success": report.success(),
            "exit_code": match report.termination { Termination::Exited(c) => Some(c), _ => None },
            "wall_time_us": report.wall_time.as_micros() as u64,
            "cpu_time_us": report.cpu_time.as_micros() as u64,
            "fuel_consumed": report.fuel_consumed,
            "peak_memory_bytes": report.peak_memory,
            "output_bytes": report.output.bytes,
            "output_entries": report.output.entries,
            "output_sha256": hash,
            "output_dir": output_dir,
            "deterministic": args.deterministic,
            "nn": report.nn,
            "gpu": report.gpu,
        });
        std::fs::write(path, serde_json::to_string_pretty(&summary)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if !args.quiet {
        let b = |n: u64| ByteSize(n).display().iec().to_string();
        eprintln!("── summary ─────────────────────────────────");
        eprintln!("status       {}", report.termination);
        eprintln!(
            "wall time    {:.3} ms (load {:.3} ms, {})",
            report.wall_time.as_secs_f64() * 1e3,
            loaded.load_time().as_secs_f64() * 1e3,
            if loaded.from_cache() {
                "from cache"
            } else {
                "compiled"
            }
        );
        eprintln!("cpu time     {:.3} ms", report.cpu_time.as_secs_f64() * 1e3);
        match report.fuel_consumed {
            Some(f) => eprintln!("fuel         {f}"),
            None => eprintln!("fuel         not metered (use --fuel N)"),
        }
        eprintln!(
            "peak memory  {} of {}",
            b(report.peak_memory),
            b(limits.memory_bytes)
        );
        eprintln!(
            "output       {} in {} entries at {}",
            b(report.output.bytes),
            report.output.entries,
            output_dir.display()
        );
        if !report.nn.models.is_empty() || report.nn.computes > 0 {
            eprintln!(
                "wasi-nn      {} inference(s) in {:.3} ms",
                report.nn.computes,
                report.nn.time.as_secs_f64() * 1e3
            );
            for m in &report.nn.models {
                let how = match &m.name {
                    Some(name) => format!("registered `{name}`"),
                    None => format!("loaded in {:.1} ms", m.load_us as f64 / 1e3),
                };
                eprintln!("model        sha256:{} on {} ({how})", m.sha256, m.backend);
            }
        }
        if report.gpu.adapter.is_some() {
            eprintln!("gpu          {}", report.gpu);
            if let Some(chain) = &report.gpu.hash_chain {
                eprintln!("gpu hashes   {chain}");
            }
        }
        if let Some(f) = &report.gpu.failure {
            eprintln!("gpu failure  {f}");
        }
        eprintln!(
            "output hash  {}",
            hash.as_deref().unwrap_or("none (outputs discarded)")
        );
    }
    match &report.termination {
        Termination::Exited(0) => Ok(ExitCode::SUCCESS),
        Termination::Exited(c) => {
            eprintln!("error: job exited with status {c}");
            Ok(ExitCode::from(1))
        }
        Termination::Trapped { message, backtrace } => {
            eprintln!("error: job trapped: {message}");
            if let Some(bt) = backtrace {
                eprintln!("{}", bt.trim_end());
            }
            Ok(ExitCode::from(1))
        }
        Termination::LimitExceeded(limit) => {
            eprintln!("error: job stopped: {limit}");
            Ok(ExitCode::from(1))
        }
        Termination::InvalidOutput(m) => {
            eprintln!("error: job left invalid output: {m}");
            Ok(ExitCode::from(1))
        }
        Termination::Cancelled => {
            eprintln!("error: job cancelled");
            Ok(ExitCode::from(1))
        }
        other => bail!("job ended: {other}"),
    }
}
