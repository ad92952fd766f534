//! The sandbox's side: one job's GPU worker process, started on the job's first GPU call, every
//! request waited for with a deadline, killed on a timeout or a failure, stopped when the job ends.

use std::io::{BufReader, BufWriter, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::proto::{AdapterDesc, Caps, Outcome, Reply, Request, Stats, read_frame, write_frame};
use super::{GpuConfig, GpuError, GpuLimits, GpuUsage, WorkerCommand};

type Frame = (Reply, Vec<u8>);

struct Worker {
    child: Child,
    /// Requests go through a writer thread so a worker that stops reading cannot block the job.
    requests: Option<SyncSender<(Request, Vec<u8>)>>,
    replies: Receiver<std::io::Result<Frame>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

/// How long a stopping worker gets to exit on its own before it is killed.
const STOP_GRACE: Duration = Duration::from_millis(500);
/// Bytes of a worker's stderr kept for error messages.
const STDERR_TAIL: usize = 4096;

impl Worker {
    fn spawn(cmd: &WorkerCommand) -> Result<Self, GpuError> {
        let mut command = Command::new(&cmd.program);
        command
            .args(&cmd.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .envs(cmd.env.iter().map(|(k, v)| (k, v)));
        // Mesa complains on every start when this is unset or not a private directory.
        if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
            command.env("XDG_RUNTIME_DIR", std::env::temp_dir());
        }
        let mut child = command.spawn().map_err(|e| {
            GpuError::NoAdapter(format!(
                "could not start the GPU worker `{}`: {e}",
                cmd.program.display()
            ))
        })?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let mut stderr_pipe = child.stderr.take().expect("piped");
        let (req_tx, req_rx) = mpsc::sync_channel::<(Request, Vec<u8>)>(1);
        let thread_err =
            |e: std::io::Error| GpuError::Internal(format!("cannot start a thread: {e}"));
        spawn_named("gpu-requests", move || {
            let mut w = BufWriter::new(stdin);
            while let Ok((req, payload)) = req_rx.recv() {
                if write_frame(&mut w, &req, &payload).is_err() {
                    break;
                }
            }
        })
        .map_err(thread_err)?;
        let (rep_tx, rep_rx) = mpsc::channel();
        spawn_named("gpu-replies", move || {
            let mut r = BufReader::new(stdout);
            loop {
                let frame = match read_frame::<Reply>(&mut r) {
                    Ok(Some(f)) => Ok(f),
                    Ok(None) => Err(std::io::ErrorKind::UnexpectedEof.into()),
                    Err(e) => Err(e),
                };
                let end = frame.is_err();
                if rep_tx.send(frame).is_err() || end {
                    break;
                }
            }
        })
        .map_err(thread_err)?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let tail = stderr.clone();
        spawn_named("gpu-stderr", move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                t.extend_from_slice(&buf[..n]);
                let excess = t.len().saturating_sub(STDERR_TAIL);
                t.drain(..excess);
            }
        })
        .map_err(thread_err)?;
        Ok(Self {
            child,
            requests: Some(req_tx),
            replies: rep_rx,
            stderr,
        })
    }

    fn stderr_tail(&self) -> String {
        let t = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        let text = String::from_utf8_lossy(&t);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(3)..].join(" | ")
    }

    /// Stops the worker: closes its stdin (it exits at once), kills it after a grace period.
    fn stop(mut self) {
        self.requests = None;
        let until = Instant::now() + STOP_GRACE;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(2));
        }
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_named(name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(|_| ())
}

/// `now + d`, or a time too far ahead to matter when that overflows.
fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}

enum State {
    NotStarted,
    Running(Box<Worker>),
    /// The context is gone; every call returns this.
    Failed(GpuError),
}

/// Totals of a job's GPU use so far.
pub(crate) struct UsageNow {
    pub(crate) dispatches: u64,
    pub(crate) submits: u64,
    pub(crate) time_ns: u128,
    pub(crate) bytes_held: u64,
    pub(crate) peak_bytes: u64,
    pub(crate) hash_chain: [u8; 32],
}

/// One job's GPU context, as the sandbox holds it.
pub(crate) struct JobGpu {
    config: Arc<GpuConfig>,
    limits: GpuLimits,
    wall_deadline: Instant,
    state: State,
    next_id: u32,
    used: Duration,
    stats: Stats,
    pub(crate) adapter: Option<AdapterDesc>,
    pub(crate) caps: Option<Caps>,
    /// The job's memory limit: no single read may bring back more.
    pub(crate) memory_bytes: u64,
    /// Deterministic mode: the job is not told the GPU's timing (like the
    /// clocks, it would make replicas' outputs differ).
    pub(crate) deterministic: bool,
}

impl JobGpu {
    pub(crate) fn new(
        config: Arc<GpuConfig>,
        limits: GpuLimits,
        wall_time: Duration,
        memory_bytes: u64,
    ) -> Self {
        Self {
            config,
            limits,
            memory_bytes,
            wall_deadline: after(wall_time),
            state: State::NotStarted,
            next_id: 0,
            used: Duration::ZERO,
            stats: Stats::default(),
            adapter: None,
            caps: None,
            deterministic: false,
        }
    }

    /// In deterministic mode the job is not told the GPU's timing.
    pub(crate) fn deterministic(mut self, on: bool) -> Self {
        self.deterministic = on;
        self
    }

    pub(crate) fn next_id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }

    /// What the job did, for its report. Stops the worker.
    pub(crate) fn finish(&mut self) -> GpuUsage {
        let failure = match std::mem::replace(&mut self.state, State::NotStarted) {
            State::Running(w) => {
                w.stop();
                None
            }
            State::Failed(e) => Some(e.to_string()),
            State::NotStarted => None,
        };
        GpuUsage {
            adapter: self.adapter.as_ref().map(|a| a.name.clone()),
            dispatches: self.stats.dispatches,
            submits: self.stats.submits,
            time: self.used,
            peak_bytes: self.stats.peak_bytes,
            hash_chain: (self.stats.dispatches > 0).then(|| hex::encode(self.stats.hash_chain)),
            failure,
        }
    }

    /// Starts the worker unless it runs; the error of a failed context otherwise.
    pub(crate) fn ensure_started(&mut self) -> Result<(), GpuError> {
        match &self.state {
            State::Failed(e) => Err(e.clone()),
            State::NotStarted => self.start(),
            State::Running(_) => Ok(()),
        }
    }

    /// Frees an object in the worker; nothing to report to the job (a dead worker freed it already).
    pub(crate) fn release(&mut self, req: Request) {
        if matches!(self.state, State::Running(_)) {
            let _ = self.request(req, Vec::new(), false);
        }
    }

    /// Totals so far, for `usage()`.
    pub(crate) fn usage_now(&self) -> UsageNow {
        UsageNow {
            dispatches: self.stats.dispatches,
            submits: self.stats.submits,
            time_ns: self.used.as_nanos(),
            bytes_held: self.stats.bytes_held,
            peak_bytes: self.stats.peak_bytes,
            hash_chain: self.stats.hash_chain,
        }
    }

    fn start(&mut self) -> Result<(), GpuError> {
        if !self.config.enabled {
            return Err(GpuError::NoAdapter(
                "GPU use is off on this host (started with `--gpu off`)".into(),
            ));
        }
        let cmd = self
            .config
            .worker
            .clone()
            .or_else(WorkerCommand::beside_current_exe)
            .ok_or_else(|| {
                GpuError::NoAdapter(
                    "the GPU worker `netmind-gpu-worker` was not found beside this program; \
                     reinstall the host or use `netmind`, which carries its own worker"
                        .into(),
                )
            })?;
        let worker = Worker::spawn(&cmd)?;
        self.state = State::Running(Box::new(worker));
        let init = Request::Init {
            adapter: self.config.adapter.clone(),
            quota: self.limits.quota(),
        };
        let until = after(self.config.init_timeout);
        let ready = self.exchange(init, Vec::new(), until.min(self.wall_deadline), false);
        match ready.map_err(|e| self.fail(e))? {
            (Outcome::Ready { adapter, caps }, _) => {
                tracing::debug!(target: "host::gpu", adapter = %adapter.name, "GPU worker ready");
                self.adapter = Some(adapter);
                self.caps = Some(caps);
                Ok(())
            }
            _ => Err(self.fail(GpuError::Internal(
                "the GPU worker answered its start with something else".into(),
            ))),
        }
    }

    /// Sends a request and waits for the reply. `charge`d requests count as GPU time and are held to
    /// the job's GPU time budget.
    pub(crate) fn request(
        &mut self,
        req: Request,
        payload: Vec<u8>,
        charge: bool,
    ) -> Result<(Outcome, Vec<u8>), GpuError> {
        self.ensure_started()?;
        let now = Instant::now();
        let budget_left = self.limits.time.saturating_sub(self.used);
        let budget_deadline = now.checked_add(budget_left).unwrap_or(self.wall_deadline);
        let deadline = if charge {
            budget_deadline.min(self.wall_deadline)
        } else {
            self.wall_deadline
        };
        let by_budget = charge && budget_deadline < self.wall_deadline;
        let started = Instant::now();
        let result = self.exchange(req, payload, deadline, by_budget);
        if charge {
            self.used += started.elapsed();
        }
        result
    }

    fn exchange(
        &mut self,
        req: Request,
        payload: Vec<u8>,
        deadline: Instant,
        by_budget: bool,
    ) -> Result<(Outcome, Vec<u8>), GpuError> {
        let State::Running(worker) = &mut self.state else {
            return Err(GpuError::Internal("the GPU worker is not running".into()));
        };
        let sent = worker
            .requests
            .as_ref()
            .is_some_and(|tx| tx.send((req, payload)).is_ok());
        let reply = if sent {
            let wait = deadline.saturating_duration_since(Instant::now());
            worker.replies.recv_timeout(wait)
        } else {
            Err(RecvTimeoutError::Disconnected)
        };
        match reply {
            Ok(Ok((Reply { outcome, stats }, data))) => {
                self.stats = stats;
                match outcome {
                    Outcome::Failed(e @ GpuError::DeviceLost(_)) => Err(self.fail(e)),
                    Outcome::Failed(e) => Err(e),
                    other => Ok((other, data)),
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                let e = if by_budget {
                    GpuError::Timeout(format!(
                        "the job's GPU time budget of {} ran out while the GPU was working; the work was \
                         stopped (raise `[resources.gpu] time` in netmind.toml, or split the work)",
                        humantime::format_duration(self.limits.time)
                    ))
                } else {
                    GpuError::Timeout(
                        "the job's wall-time limit ran out while the GPU was working; the work was stopped"
                            .into(),
                    )
                };
                Err(self.fail(e))
            }
            Ok(Err(_)) | Err(RecvTimeoutError::Disconnected) => {
                // Give the worker a moment to finish writing stderr and exiting.
                let until = Instant::now() + Duration::from_millis(200);
                let mut status = None;
                while status.is_none() && Instant::now() < until {
                    status = worker.child.try_wait().ok().flatten();
                    thread::sleep(Duration::from_millis(5));
                }
                let status =
                    status.map_or_else(|| "still running; killed".to_owned(), |s| s.to_string());
                let tail = worker.stderr_tail();
                let detail = if tail.is_empty() {
                    String::new()
                } else {
                    format!("; it said: {tail}")
                };
                Err(self.fail(GpuError::DeviceLost(format!(
                    "the GPU worker process ended ({status}){detail}"
                ))))
            }
        }
    }

    /// Ends the context with `e`: the worker is killed, and every later call returns `e`.
    fn fail(&mut self, e: GpuError) -> GpuError {
        if let State::Running(mut w) = std::mem::replace(&mut self.state, State::Failed(e.clone()))
        {
            w.kill();
        }
        tracing::debug!(target: "host::gpu", error = %e, "GPU context ended");
        e
    }
}

impl Drop for JobGpu {
    fn drop(&mut self) {
        if let State::Running(w) = std::mem::replace(&mut self.state, State::NotStarted) {
            w.stop();
        }
    }
}
