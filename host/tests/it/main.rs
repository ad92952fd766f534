//! Integration tests of the sandbox, driven by real guests compiled from Rust
//! (`samples/` and `conformance/test-programs`, built by `netmind-samples-artifacts`).

mod gpu;
mod gpu_samples;
mod hostile;
mod nn;
mod sandbox;

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use netmind_host::{Job, JobLimits, RunOptions, RunReport, Runtime, SandboxConfig};

/// One shared runtime, as a host daemon has.
pub(crate) fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| Runtime::new(SandboxConfig::default()).expect("runtime"))
}

pub(crate) fn small_limits() -> JobLimits {
    JobLimits {
        memory_bytes: 64 << 20,
        wall_time: Duration::from_secs(20),
        cpu_time: Duration::from_secs(20),
        ..JobLimits::default()
    }
}

/// A finished run and the directory its outputs are in.
pub(crate) struct Ran {
    pub(crate) report: RunReport,
    pub(crate) out: tempfile::TempDir,
}

impl Ran {
    pub(crate) fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.report.stdout).into_owned()
    }
}

pub(crate) fn run_with(
    rt: &Runtime,
    wasm: &str,
    args: &[&str],
    limits: JobLimits,
    tweak: impl FnOnce(&mut RunOptions),
) -> Ran {
    run_job(&load(rt, wasm), args, limits, tweak)
}

/// Runs a loaded job once with `args` after `argv[0]`.
pub(crate) fn run_job(
    job: &Job,
    args: &[&str],
    limits: JobLimits,
    tweak: impl FnOnce(&mut RunOptions),
) -> Ran {
    let out = tempfile::tempdir().unwrap();
    let mut opts = RunOptions {
        args: std::iter::once("job")
            .chain(args.iter().copied())
            .map(String::from)
            .collect(),
        output_dir: out.path().to_path_buf(),
        limits,
        ..RunOptions::default()
    };
    tweak(&mut opts);
    let report = job.run(&opts).expect("run set-up");
    Ran { report, out }
}

/// Compiles each artifact once per runtime, as a host caches compiled jobs.
pub(crate) fn load(rt: &Runtime, wasm: &str) -> Arc<Job> {
    static JOBS: Mutex<Vec<(String, String, Arc<Job>)>> = Mutex::new(Vec::new());
    let key = format!("{rt:?}");
    let mut jobs = JOBS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, _, job)) = jobs.iter().find(|(k, w, _)| *k == key && w == wasm) {
        return job.clone();
    }
    let job = Arc::new(
        rt.load(&std::fs::read(wasm).expect("artifact"))
            .expect("load"),
    );
    jobs.push((key, wasm.to_string(), job.clone()));
    job
}

pub(crate) fn run(wasm: &str, args: &[&str]) -> Ran {
    run_with(runtime(), wasm, args, small_limits(), |_| {})
}

pub(crate) fn dir_is_empty(p: &Path) -> bool {
    std::fs::read_dir(p).unwrap().next().is_none()
}
