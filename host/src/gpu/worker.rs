//! The GPU worker process: serves one job's GPU requests on stdin/stdout (see [`super::proto`]).
//!
//! Started by the sandbox as `netmind-gpu-worker` (or `netmind host gpu-worker`); never by hand. It
//! dies with its parent, exits at once when its stdin closes (the job ended), and exits after
//! replying when its device is lost or wgpu panics. Its stdout carries only frames; diagnostics go to
//! stderr.

use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;
use std::sync::mpsc;

use super::GpuError;
use super::device::JobDevice;
use super::proto::{Outcome, Reply, Request, Stats, read_frame, write_frame};

/// The worker's `main`: returns when the job's requests end.
pub fn main() -> ExitCode {
    die_with_parent();
    // Frames go to a private copy of stdout; fd 1 becomes stderr, so a driver that prints cannot
    // corrupt the stream.
    let Some(frames) = private_stdout() else {
        eprintln!("netmind-gpu-worker: cannot set up its output");
        return ExitCode::FAILURE;
    };
    // Reading requests happens on this thread; a closed stdin ends the process at once, even while
    // the GPU is busy with a shader that never finishes.
    let (tx, rx) = mpsc::sync_channel::<(Request, Vec<u8>)>(1);
    let served = std::thread::Builder::new()
        .name("gpu-worker".into())
        // naga's WGSL parser recurses; hostile shaders get a big stack (and a bounded source size).
        .stack_size(64 << 20)
        .spawn(move || serve(rx, frames));
    if served.is_err() {
        return ExitCode::FAILURE;
    }
    let mut stdin = BufReader::new(io::stdin().lock());
    loop {
        match read_frame::<Request>(&mut stdin) {
            Ok(Some(frame)) => {
                if tx.send(frame).is_err() {
                    break;
                }
            }
            Ok(None) => quick_exit(0),
            Err(e) => {
                eprintln!("netmind-gpu-worker: bad request stream: {e}");
                quick_exit(2)
            }
        }
    }
    quick_exit(0)
}

/// Longest error message sent back (a codespan report of a 1 MiB one-line shader is longer).
const MAX_MESSAGE: usize = 8192;

fn serve(rx: mpsc::Receiver<(Request, Vec<u8>)>, frames: File) {
    let mut out = BufWriter::new(frames);
    let mut job: Option<JobDevice> = None;
    while let Ok((req, payload)) = rx.recv() {
        let stats = job.as_ref().map(|j| j.stats).unwrap_or_default();
        let result = catch_unwind(AssertUnwindSafe(|| handle(&mut job, req, &payload)));
        let (outcome, data, fatal) = match result {
            Ok(Ok((outcome, data))) => (outcome, data, false),
            Ok(Err(e)) => {
                let fatal = matches!(e, GpuError::DeviceLost(_));
                (Outcome::Failed(shorten(e)), Vec::new(), fatal)
            }
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("unknown panic");
                let e = GpuError::DeviceLost(format!("the GPU driver failed: {msg}"));
                (Outcome::Failed(e), Vec::new(), true)
            }
        };
        let stats: Stats = job.as_ref().map(|j| j.stats).unwrap_or(stats);
        if write_frame(&mut out, &Reply { outcome, stats }, &data).is_err() || fatal {
            quick_exit(if fatal { 3 } else { 0 });
        }
    }
}

fn shorten(e: GpuError) -> GpuError {
    let cut = |mut m: String| {
        if m.len() > MAX_MESSAGE {
            let mut end = MAX_MESSAGE;
            while !m.is_char_boundary(end) {
                end -= 1;
            }
            m.truncate(end);
            m.push_str(" [...]");
        }
        m
    };
    match e {
        GpuError::NoAdapter(m) => GpuError::NoAdapter(cut(m)),
        GpuError::InvalidShader(m) => GpuError::InvalidShader(cut(m)),
        GpuError::Unsupported(m) => GpuError::Unsupported(cut(m)),
        GpuError::BindingMismatch(m) => GpuError::BindingMismatch(cut(m)),
        GpuError::OutOfRange(m) => GpuError::OutOfRange(cut(m)),
        GpuError::QuotaExceeded(m) => GpuError::QuotaExceeded(cut(m)),
        GpuError::LimitExceeded(m) => GpuError::LimitExceeded(cut(m)),
        GpuError::Conflict(m) => GpuError::Conflict(cut(m)),
        GpuError::Timeout(m) => GpuError::Timeout(cut(m)),
        GpuError::DeviceLost(m) => GpuError::DeviceLost(cut(m)),
        GpuError::Internal(m) => GpuError::Internal(cut(m)),
    }
}

fn handle(
    job: &mut Option<JobDevice>,
    req: Request,
    payload: &[u8],
) -> Result<(Outcome, Vec<u8>), GpuError> {
    if let Request::Init { adapter, quota } = &req {
        if job.is_some() {
            return Err(GpuError::Internal(
                "the worker is already initialised".into(),
            ));
        }
        limit_memory(quota.max_total_bytes);
        let (device, adapter) = JobDevice::open(adapter.as_deref(), *quota)?;
        let caps = device.caps();
        *job = Some(device);
        return Ok((Outcome::Ready { adapter, caps }, Vec::new()));
    }
    let Some(job) = job.as_mut() else {
        return Err(GpuError::Internal("the worker was not initialised".into()));
    };
    let outcome = match req {
        Request::Init { .. } => unreachable!("handled above"),
        Request::CreateBuffer { id, size } => job.create_buffer(id, size)?,
        Request::WriteBuffer { id, offset } => job.write_buffer(id, offset, payload)?,
        Request::ReadBuffer { id, offset, len } => {
            return Ok((Outcome::Data, job.read_buffer(id, offset, len)?));
        }
        Request::DropBuffer { id } => {
            job.drop_buffer(id);
            Outcome::Done
        }
        Request::CreatePipeline { id, entry } => job.create_pipeline(id, payload, &entry)?,
        Request::DropPipeline { id } => {
            job.drop_pipeline(id);
            Outcome::Done
        }
        Request::Submit { dispatches } => job.submit(&dispatches)?,
    };
    Ok((outcome, Vec::new()))
}

/// Ends the process without running destructors: dropping a wgpu device whose queue is stuck in a
/// shader that never ends blocks forever, and the OS frees everything anyway.
fn quick_exit(code: i32) -> ! {
    // SAFETY: `_exit` only ends the process; it touches no Rust state.
    #[allow(
        unsafe_code,
        reason = "the one way to exit without blocking on a stuck GPU queue"
    )]
    unsafe {
        libc::_exit(code)
    }
}

/// Caps the worker's private memory (`RLIMIT_DATA`): twice the job's GPU memory quota (buffers and
/// staging; on a software adapter GPU memory is process memory) plus room for the driver. naga's
/// constant evaluator can be made to expand a tiny shader into gigabytes; past the cap the worker
/// dies and the job gets `device-lost`, the host is untouched.
fn limit_memory(quota: u64) {
    #[cfg(target_os = "linux")]
    {
        let cap = quota.saturating_mul(2).saturating_add(4 << 30);
        let lim = libc::rlimit {
            rlim_cur: cap,
            rlim_max: cap,
        };
        // SAFETY: setrlimit reads the struct we pass and touches nothing else.
        #[allow(unsafe_code, reason = "setrlimit has no safe wrapper in std")]
        unsafe {
            libc::setrlimit(libc::RLIMIT_DATA, &lim);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = quota;
}

/// A duplicate of stdout for frames, with fd 1 pointed at stderr.
fn private_stdout() -> Option<File> {
    use std::os::fd::FromRawFd;
    // SAFETY: dup and dup2 on the process's own standard descriptors; the new descriptor is owned
    // by the File and nothing else.
    #[allow(unsafe_code, reason = "fd plumbing has no safe wrapper in std")]
    unsafe {
        let fd = libc::dup(1);
        if fd < 0 || libc::dup2(2, 1) < 0 {
            return None;
        }
        Some(File::from_raw_fd(fd))
    }
}

/// Asks the kernel to kill this process when its parent (the sandbox) dies, so a worker stuck in a
/// shader never outlives the host.
fn die_with_parent() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and touches no memory.
        #[allow(unsafe_code, reason = "prctl has no safe wrapper in std")]
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        }
        // SAFETY: getppid cannot fail and touches no memory.
        #[allow(unsafe_code, reason = "getppid has no safe wrapper in std")]
        let parent = unsafe { libc::getppid() };
        if parent == 1 {
            quick_exit(0);
        }
    }
}
