//! Running a job: the store, the guard that enforces limits, and the report.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cpu_time::ThreadTime;
use rand::SeedableRng;
use rand::rngs::StdRng;
use wasmtime::component::{ResourceTable, ResourceTableError};
use wasmtime::{Store, Trap, UpdateDeadline, WasmBacktrace};
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::core::CoreState;
use crate::limits::{JobLimits, LimitKind, Limiter};
use crate::nn::ModelUse;
use crate::nn::job::{JobNn, NnCall};
use crate::nn::wit::NnView;
use crate::nn::witx::WitxState;
use crate::output::{self, Usage};
use crate::runtime::{Code, Job};
use crate::stdio::{Capture, Progress, RunObserver, Stream};
use crate::{Error, Result};

/// What one run of a job gets to see.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// `argv`, including `argv[0]` (the job's name).
    pub args: Vec<String>,
    /// The environment; nothing of the host's is inherited.
    pub env: Vec<(String, String)>,
    /// Bytes on stdin; `None` is a closed stdin.
    pub stdin: Option<Vec<u8>>,
    /// Host directory shown read-only at `/input`.
    pub input_dir: Option<PathBuf>,
    /// Host directory shown read-only at `/assets` (the bundle's assets).
    pub assets_dir: Option<PathBuf>,
    /// Host directory shown writable at `/output`; must exist and be empty.
    pub output_dir: PathBuf,
    /// Limits.
    pub limits: JobLimits,
    /// Seed of the random generators in deterministic mode.
    pub seed: u64,
    /// Receives stdout, stderr and progress while the job runs.
    pub observer: Option<Arc<dyn RunObserver>>,
    /// Set it to stop the job (within one epoch tick, a few ms): the run
    /// ends with [`Termination::Cancelled`]. For a job its owner cancelled,
    /// or work a host hands back.
    pub cancel: Option<Arc<AtomicBool>>,
    /// While it is set the job is paused at its next epoch tick (a few
    /// ms): it uses no CPU, and the paused time does not count against its
    /// wall time. For a host whose owner is using the machine.
    pub pause: Option<Arc<AtomicBool>>,
}

impl fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunOptions")
            .field("args", &self.args)
            .field("input_dir", &self.input_dir)
            .field("output_dir", &self.output_dir)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Termination {
    /// The job exited with this status (0 is success).
    Exited(i32),
    /// The job trapped.
    Trapped {
        /// The trap.
        message: String,
        /// The wasm backtrace, one frame a line.
        backtrace: Option<String>,
    },
    /// A limit stopped the job.
    LimitExceeded(LimitKind),
    /// The job left outputs that cannot be returned.
    InvalidOutput(String),
    /// The host stopped it ([`RunOptions::cancel`]).
    Cancelled,
}

impl fmt::Display for Termination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exited(0) => write!(f, "exited successfully"),
            Self::Exited(c) => write!(f, "exited with status {c}"),
            Self::Trapped { message, .. } => write!(f, "trapped: {message}"),
            Self::LimitExceeded(l) => write!(f, "stopped: {l}"),
            Self::InvalidOutput(m) => write!(f, "invalid output: {m}"),
            Self::Cancelled => write!(f, "cancelled"),
        }
    }
}

/// What a run did and used.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// How it ended.
    pub termination: Termination,
    /// From instantiation to exit.
    pub wall_time: Duration,
    /// CPU time of the thread that ran the guest.
    pub cpu_time: Duration,
    /// Fuel consumed, when fuel is metered.
    pub fuel_consumed: Option<u64>,
    /// Largest total linear memory.
    pub peak_memory: u64,
    /// What the job left in `/output`.
    pub output: Usage,
    /// Hash of the output tree (see [`crate::output`]); `None` when the
    /// outputs were discarded because a limit was exceeded or they were invalid.
    pub output_hash: Option<[u8; 32]>,
    /// Captured stdout (up to the limit).
    pub stdout: Vec<u8>,
    /// Captured stderr (up to the limit), progress lines included.
    pub stderr: Vec<u8>,
    /// The last progress report.
    pub progress: Option<Progress>,
    /// What the job did through wasi-nn.
    pub nn: NnUsage,
    /// What the job did on the GPU.
    pub gpu: crate::GpuUsage,
}

/// What a job did through wasi-nn: the models it used (with their hashes, for
/// the receipt), how many inferences it ran and how long they took.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct NnUsage {
    /// Models loaded, by bytes or by name, in order.
    pub models: Vec<ModelUse>,
    /// `compute` calls.
    pub computes: u64,
    /// Time spent loading models and computing.
    #[serde(with = "humantime_serde_micros")]
    pub time: Duration,
}

mod humantime_serde_micros {
    pub(super) fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_micros() as u64)
    }
}

impl RunReport {
    /// Exited with status 0 and left valid outputs.
    pub fn success(&self) -> bool {
        self.termination == Termination::Exited(0)
    }
}

/// Per-store limit state, checked on every epoch tick.
pub(crate) struct Guard {
    pub(crate) limiter: Limiter,
    pub(crate) limits: JobLimits,
    pub(crate) started: Instant,
    cpu_started: Option<Duration>,
    output_dir: PathBuf,
    ticks: u64,
    pub(crate) killed: Option<LimitKind>,
    pub(crate) cancel: Option<Arc<AtomicBool>>,
    pub(crate) cancelled: bool,
    pause: Option<Arc<AtomicBool>>,
}

impl Guard {
    fn check(&mut self) -> wasmtime::Result<UpdateDeadline> {
        self.ticks += 1;
        if let Some(pause) = &self.pause
            && pause.load(Ordering::Relaxed)
        {
            let paused = Instant::now();
            while pause.load(Ordering::Relaxed)
                && !self
                    .cancel
                    .as_ref()
                    .is_some_and(|c| c.load(Ordering::Relaxed))
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            self.started += paused.elapsed();
        }
        if self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            self.cancelled = true;
            return Err(wasmtime::Error::msg("the job was cancelled"));
        }
        let over = if self.started.elapsed() > self.limits.wall_time {
            Some(LimitKind::WallTime(self.limits.wall_time))
        } else if self
            .cpu_started
            .as_ref()
            .is_some_and(|t| thread_cpu().saturating_sub(*t) > self.limits.cpu_time)
        {
            Some(LimitKind::CpuTime(self.limits.cpu_time))
        } else if self.ticks.is_multiple_of(16) {
            output::check_quota(
                &self.output_dir,
                self.limits.output_bytes,
                self.limits.output_files,
            )
        } else {
            None
        };
        match over {
            Some(limit) => {
                let msg = limit.to_string();
                self.killed = Some(limit);
                Err(wasmtime::Error::msg(msg))
            }
            None => Ok(UpdateDeadline::Continue(1)),
        }
    }
}

/// Store data for components.
pub(crate) struct ComponentState {
    ctx: WasiCtx,
    table: ResourceTable,
    guard: Guard,
    nn: JobNn,
    gpu: crate::gpu::JobGpu,
}

impl ComponentState {
    pub(crate) fn gpu_view(&mut self) -> crate::gpu::wit::GpuView<'_> {
        crate::gpu::wit::GpuView {
            table: &mut self.table,
            gpu: &mut self.gpu,
        }
    }

    pub(crate) fn nn_view(&mut self) -> NnView<'_> {
        NnView {
            table: &mut self.table,
            call: NnCall {
                nn: &mut self.nn,
                guard: &mut self.guard,
            },
        }
    }

    pub(crate) fn deadline_poll(&mut self) -> crate::poll::DeadlinePoll<'_> {
        crate::poll::DeadlinePoll {
            table: &mut self.table,
            guard: &mut self.guard,
        }
    }
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// A wall clock stuck at 2000-01-01T00:00:00Z.
struct FixedWallClock;

impl wasmtime_wasi::HostWallClock for FixedWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::from_secs(946_684_800)
    }
}

/// A monotonic clock that advances 1 µs per reading, so deterministic jobs
/// that wait on time still make progress.
#[derive(Default)]
struct SteppingClock(AtomicU64);

impl wasmtime_wasi::HostMonotonicClock for SteppingClock {
    fn resolution(&self) -> u64 {
        1_000
    }
    fn now(&self) -> u64 {
        self.0.fetch_add(1_000, Ordering::Relaxed)
    }
}

fn check_dir(role: &'static str, path: &Path, must_be_empty: bool) -> Result<()> {
    let bad = |reason: String| Error::BadDirectory {
        role,
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if !meta.is_dir() {
        return Err(bad("not a directory".into()));
    }
    if must_be_empty
        && std::fs::read_dir(path)
            .map_err(|e| bad(e.to_string()))?
            .next()
            .is_some()
    {
        return Err(bad(
            "not empty; outputs must start from an empty directory so their hash means something"
                .into(),
        ));
    }
    Ok(())
}

impl Job {
    /// Runs the job once in a fresh instance.
    ///
    /// Returns `Err` only when the run could not be set up (a bad directory,
    /// a limit over the host's maximum); everything the guest does, including
    /// traps and limits, is in the [`RunReport`].
    pub fn run(&self, opts: &RunOptions) -> Result<RunReport> {
        let rt = &self.runtime.inner;
        let limits = &opts.limits;
        if limits.memory_bytes > rt.config.max_memory_bytes {
            return Err(Error::LimitTooLarge {
                what: "memory limit",
                requested: crate::limits::bytes(limits.memory_bytes),
                maximum: crate::limits::bytes(rt.config.max_memory_bytes),
            });
        }
        if limits.fuel.is_some() && !rt.config.fuel {
            return Err(Error::LimitTooLarge {
                what: "fuel metering",
                requested: "on".into(),
                maximum: "off (create the runtime with `fuel: true`)".into(),
            });
        }
        // The limits are checked on epoch ticks: the ticker runs while this does.
        let _ticking = rt.ticker.hold();
        check_dir("output", &opts.output_dir, true)?;
        if let Some(d) = &opts.input_dir {
            check_dir("input", d, false)?;
        }

        let stdout = Capture::new(Stream::Stdout, limits.stdio_bytes, opts.observer.clone());
        let stderr = Capture::new(Stream::Stderr, limits.stdio_bytes, opts.observer.clone());
        let mut b = WasiCtxBuilder::new();
        b.args(&opts.args)
            .envs(&opts.env)
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        if let Some(bytes) = &opts.stdin {
            b.stdin(MemoryInputPipe::new(bytes.clone()));
        }
        let preopen = |b: &mut WasiCtxBuilder, host: &Path, guest: &str, perms| {
            b.preopened_dir(host, guest, perms)
                .map(|_| ())
                .map_err(|e| Error::BadDirectory {
                    role: "preopened",
                    path: host.to_path_buf(),
                    reason: format!("{e:#}"),
                })
        };
        preopen(&mut b, &opts.output_dir, "/output", FsPerms::ReadWrite)?;
        if let Some(d) = &opts.input_dir {
            preopen(&mut b, d, "/input", FsPerms::ReadOnly)?;
        }
        if let Some(d) = &opts.assets_dir {
            preopen(&mut b, d, "/assets", FsPerms::ReadOnly)?;
        }
        if rt.config.deterministic {
            b.wall_clock(FixedWallClock)
                .monotonic_clock(SteppingClock::default())
                .secure_random(StdRng::seed_from_u64(opts.seed))
                .insecure_random(StdRng::seed_from_u64(opts.seed.wrapping_add(1)))
                .insecure_random_seed(u128::from(opts.seed));
        }
        let guard = Guard {
            limiter: Limiter::new(limits),
            limits: limits.clone(),
            started: Instant::now(),
            cpu_started: None,
            output_dir: opts.output_dir.clone(),
            ticks: 0,
            cancel: opts.cancel.clone(),
            cancelled: false,
            pause: opts.pause.clone(),
            killed: None,
        };
        let fuel_budget = limits.fuel.unwrap_or(u64::MAX);

        let handles = usize::try_from(limits.handles).unwrap_or(usize::MAX);
        let nn = JobNn::new(rt.nn.clone());
        let mut gpu_usage = crate::GpuUsage::default();
        let (outcome, fuel_left, guard, nn) = match &self.code {
            Code::Component { pre, .. } => {
                let mut table = ResourceTable::new();
                table.set_max_capacity(handles);
                let state = ComponentState {
                    ctx: b.build(),
                    table,
                    guard,
                    nn,
                    gpu: crate::gpu::JobGpu::new(
                        rt.gpu.clone(),
                        limits.gpu.clone(),
                        limits.wall_time,
                        limits.memory_bytes,
                    )
                    .deterministic(rt.config.deterministic),
                };
                let mut store = new_store(&rt.engine, state, rt.config.fuel, fuel_budget)?;
                let outcome = pre
                    .instantiate(&mut store)
                    .and_then(|cmd| cmd.wasi_cli_run().call_run(&mut store))
                    .map(|r| if r.is_ok() { 0 } else { 1 });
                let fuel_left = store.get_fuel().ok();
                let ComponentState {
                    guard, nn, mut gpu, ..
                } = store.into_data();
                // Stops the job's GPU worker, which frees every GPU object the job made.
                gpu_usage = gpu.finish();
                (outcome, fuel_left, guard, nn)
            }
            Code::Core { pre, .. } => {
                let mut wasi = b.build_p1();
                wasi.ctx().table.set_max_capacity(handles);
                let state = CoreState {
                    wasi,
                    guard,
                    nn,
                    witx: WitxState::default(),
                    stderr: stderr.clone(),
                };
                let mut store = new_store(&rt.engine, state, rt.config.fuel, fuel_budget)?;
                let outcome = pre
                    .instantiate(&mut store)
                    .and_then(|i| i.get_typed_func::<(), ()>(&mut store, "_start"))
                    .and_then(|start| start.call(&mut store, ()))
                    .map(|()| 0);
                let fuel_left = store.get_fuel().ok();
                let CoreState { guard, nn, .. } = store.into_data();
                (outcome, fuel_left, guard, nn)
            }
        };
        let wall_time = guard.started.elapsed();
        let cpu_time = guard
            .cpu_started
            .map(|t| thread_cpu().saturating_sub(t))
            .unwrap_or_default();
        stdout.finish();
        stderr.finish();

        let mut termination = match outcome {
            Ok(code) => Termination::Exited(code),
            Err(e) => classify(
                e,
                &guard,
                &stdout,
                &stderr,
                limits,
                rt.config.max_wasm_stack,
            ),
        };
        let (output_hash, usage) = finish_output(&opts.output_dir, limits, &mut termination);
        let (stdout_bytes, _) = stdout.take();
        let (stderr_bytes, progress) = stderr.take();
        let report = RunReport {
            termination,
            wall_time,
            cpu_time,
            fuel_consumed: rt.config.fuel.then(|| fuel_budget - fuel_left.unwrap_or(0)),
            peak_memory: guard.limiter.memory_peak,
            output: usage,
            output_hash,
            stdout: stdout_bytes,
            stderr: stderr_bytes,
            progress,
            nn: NnUsage {
                models: nn.models,
                computes: nn.computes,
                time: nn.used,
            },
            gpu: gpu_usage,
        };
        tracing::debug!(target: "host::sandbox", termination = %report.termination, wall_us = wall_time.as_micros() as u64, "job finished");
        Ok(report)
    }
}

/// CPU time used by the calling thread so far.
fn thread_cpu() -> Duration {
    ThreadTime::now().as_duration()
}

/// Store data that carries a [`Guard`].
trait Guarded: Sized + Send + 'static {
    fn guard(&mut self) -> &mut Guard;
}

impl Guarded for ComponentState {
    fn guard(&mut self) -> &mut Guard {
        &mut self.guard
    }
}

impl Guarded for CoreState {
    fn guard(&mut self) -> &mut Guard {
        &mut self.guard
    }
}

fn new_store<S: Guarded>(
    engine: &wasmtime::Engine,
    state: S,
    fuel: bool,
    budget: u64,
) -> Result<Store<S>> {
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.guard().limiter);
    if fuel {
        store.set_fuel(budget).map_err(Error::Wasmtime)?;
    }
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut ctx| ctx.data_mut().guard().check());
    let guard = store.data_mut().guard();
    guard.started = Instant::now();
    guard.cpu_started = Some(thread_cpu());
    Ok(store)
}

fn classify(
    err: wasmtime::Error,
    guard: &Guard,
    stdout: &Capture,
    stderr: &Capture,
    limits: &JobLimits,
    max_stack: usize,
) -> Termination {
    if let Some(exit) = err.downcast_ref::<I32Exit>() {
        return Termination::Exited(exit.0);
    }
    if guard.cancelled {
        return Termination::Cancelled;
    }
    if let Some(limit) = guard.killed.clone() {
        return Termination::LimitExceeded(limit);
    }
    if let Some(limit) = stdout.exceeded().or_else(|| stderr.exceeded()) {
        return Termination::LimitExceeded(limit);
    }
    if matches!(
        err.downcast_ref::<ResourceTableError>(),
        Some(ResourceTableError::Full)
    ) {
        return Termination::LimitExceeded(LimitKind::Handles(limits.handles));
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => {
            return Termination::LimitExceeded(LimitKind::Fuel(limits.fuel.unwrap_or(u64::MAX)));
        }
        Some(Trap::StackOverflow) => {
            return Termination::LimitExceeded(LimitKind::Stack(max_stack as u64));
        }
        _ => {}
    }
    if let Some(limit) = guard.limiter.refused.clone() {
        // A guest whose allocation was refused almost always aborts right after.
        return Termination::LimitExceeded(limit);
    }
    let backtrace = err.downcast_ref::<WasmBacktrace>().map(|bt| bt.to_string());
    let message = match err.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{:#}", err.root_cause()),
    };
    Termination::Trapped { message, backtrace }
}

fn finish_output(
    dir: &Path,
    limits: &JobLimits,
    termination: &mut Termination,
) -> (Option<[u8; 32]>, Usage) {
    if matches!(
        termination,
        Termination::LimitExceeded(LimitKind::OutputBytes(_) | LimitKind::OutputFiles(_))
    ) {
        output::clear(dir);
        return (None, Usage::default());
    }
    match output::tree_hash(dir) {
        Ok((hash, usage)) => {
            let over = if usage.bytes > limits.output_bytes {
                Some(LimitKind::OutputBytes(limits.output_bytes))
            } else if usage.entries > limits.output_files {
                Some(LimitKind::OutputFiles(limits.output_files))
            } else {
                None
            };
            if let Some(limit) = over {
                *termination = Termination::LimitExceeded(limit);
                output::clear(dir);
                return (None, Usage::default());
            }
            (Some(hash), usage)
        }
        Err(e) => {
            if matches!(termination, Termination::Exited(0)) {
                *termination = Termination::InvalidOutput(e.to_string());
            }
            output::clear(dir);
            (None, Usage::default())
        }
    }
}
