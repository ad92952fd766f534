//! Per-job limits and the resource limiter that enforces the memory ones.

use std::fmt;
use std::time::Duration;

use netmind_protocol::manifest::Resources;

/// The limits one run of a job is held to.
///
/// Built from the manifest's `[resources]` with [`JobLimits::from_resources`],
/// then overridden by the caller (`netmind run --memory ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLimits {
    /// Bytes of linear memory, summed over all memories of the job.
    pub memory_bytes: u64,
    /// Table elements, summed over all tables of the job.
    pub table_elements: u64,
    /// Fuel (wasm instructions, roughly); `None` runs without fuel metering.
    pub fuel: Option<u64>,
    /// CPU time of the thread running the guest.
    pub cpu_time: Duration,
    /// Wall-clock time from instantiation to exit.
    pub wall_time: Duration,
    /// Bytes the job may leave in `/output`.
    pub output_bytes: u64,
    /// Files and directories the job may leave in `/output`.
    pub output_files: u64,
    /// Bytes the job may write to stdout, and separately to stderr.
    pub stdio_bytes: u64,
    /// Handles (open files, directories, streams, pollables) the job may hold
    /// at once; each file handle is a host file descriptor.
    pub handles: u64,
    /// GPU quotas (memory and time from `[resources.gpu]`).
    pub gpu: crate::GpuLimits,
}

impl Default for JobLimits {
    fn default() -> Self {
        Self::from_resources(&Resources::default())
    }
}

impl JobLimits {
    /// The limits a manifest asks for.
    pub fn from_resources(r: &Resources) -> Self {
        Self {
            memory_bytes: r.memory.as_u64(),
            table_elements: 1_000_000,
            fuel: r.fuel,
            cpu_time: r.cpu_time,
            wall_time: r.wall_time,
            output_bytes: r.output_bytes.as_u64(),
            output_files: r.output_files,
            stdio_bytes: r.stdout_bytes.as_u64(),
            handles: 1024,
            gpu: crate::GpuLimits {
                memory_bytes: r.gpu.memory.as_u64(),
                time: r.gpu.time,
                ..Default::default()
            },
        }
    }
}

/// A limit that stopped a job.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitKind {
    /// Linear memory.
    Memory(u64),
    /// Table elements.
    Tables(u64),
    /// Fuel.
    Fuel(u64),
    /// CPU time.
    CpuTime(Duration),
    /// Wall-clock time.
    WallTime(Duration),
    /// The wasm stack.
    Stack(u64),
    /// Bytes on stdout.
    Stdout(u64),
    /// Bytes on stderr.
    Stderr(u64),
    /// Bytes in `/output`.
    OutputBytes(u64),
    /// Files in `/output`.
    OutputFiles(u64),
    /// Open handles.
    Handles(u64),
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory(b) => write!(f, "memory limit of {} exceeded", bytes(*b)),
            Self::Tables(n) => write!(f, "table limit of {n} elements exceeded"),
            Self::Fuel(n) => write!(f, "fuel limit of {n} exhausted"),
            Self::CpuTime(d) => write!(f, "CPU time limit of {} exceeded", secs(*d)),
            Self::WallTime(d) => write!(f, "wall-time limit of {} exceeded", secs(*d)),
            Self::Stack(b) => write!(f, "wasm stack limit of {} exceeded", bytes(*b)),
            Self::Stdout(b) => write!(f, "stdout limit of {} exceeded", bytes(*b)),
            Self::Stderr(b) => write!(f, "stderr limit of {} exceeded", bytes(*b)),
            Self::OutputBytes(b) => write!(f, "output limit of {} exceeded", bytes(*b)),
            Self::OutputFiles(n) => write!(f, "output limit of {n} files exceeded"),
            Self::Handles(n) => write!(f, "open-handle limit of {n} exceeded"),
        }
    }
}

/// Formats a byte count the way users write limits (`512 MiB`).
pub fn bytes(b: u64) -> String {
    bytesize::ByteSize(b).display().iec().to_string()
}

fn secs(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Enforces the memory and table limits of one store and records peaks.
#[derive(Debug)]
pub(crate) struct Limiter {
    memory_limit: u64,
    table_limit: u64,
    /// Linear memories plus host bytes.
    memory_now: u64,
    /// Host memory held for the job (wasi-nn), part of `memory_now`.
    host_bytes: u64,
    pub(crate) memory_peak: u64,
    table_now: u64,
    /// Set when a growth was refused; classifies the trap that usually follows.
    pub(crate) refused: Option<LimitKind>,
}

impl Limiter {
    pub(crate) fn new(limits: &JobLimits) -> Self {
        Self {
            memory_limit: limits.memory_bytes,
            table_limit: limits.table_elements,
            memory_now: 0,
            host_bytes: 0,
            memory_peak: 0,
            table_now: 0,
            refused: None,
        }
    }
}

impl Limiter {
    /// Charges host memory held for the job (wasi-nn graphs and tensors) to
    /// its memory limit; on refusal, gives the limit and what is in use.
    pub(crate) fn charge(&mut self, bytes: u64) -> Result<(), (u64, u64)> {
        let total = self.memory_now.saturating_add(bytes);
        if total > self.memory_limit {
            return Err((self.memory_limit, self.memory_now));
        }
        self.memory_now = total;
        self.host_bytes += bytes;
        self.memory_peak = self.memory_peak.max(total);
        Ok(())
    }

    /// Gives back what [`Self::charge`] took.
    pub(crate) fn refund(&mut self, bytes: u64) {
        let bytes = bytes.min(self.host_bytes);
        self.host_bytes -= bytes;
        self.memory_now -= bytes;
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.memory_now - current as u64 + desired as u64;
        if total > self.memory_limit {
            self.refused = Some(LimitKind::Memory(self.memory_limit));
            return Ok(false);
        }
        self.memory_now = total;
        self.memory_peak = self.memory_peak.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.table_now - current as u64 + desired as u64;
        if total > self.table_limit {
            self.refused = Some(LimitKind::Tables(self.table_limit));
            return Ok(false);
        }
        self.table_now = total;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        Ok(())
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn limiter_sums_memories_and_refuses_past_the_cap() {
        let limits = JobLimits {
            memory_bytes: 100,
            ..JobLimits::default()
        };
        let mut l = Limiter::new(&limits);
        assert!(l.memory_growing(0, 60, None).unwrap());
        assert!(
            !l.memory_growing(0, 50, None).unwrap(),
            "second memory would pass 100"
        );
        assert_eq!(l.refused, Some(LimitKind::Memory(100)));
        assert!(l.memory_growing(0, 40, None).unwrap());
        assert_eq!(l.memory_peak, 100);
    }

    #[test]
    fn host_bytes_share_the_memory_limit() {
        let limits = JobLimits {
            memory_bytes: 100,
            ..JobLimits::default()
        };
        let mut l = Limiter::new(&limits);
        assert!(l.memory_growing(0, 60, None).unwrap());
        assert_eq!(l.charge(50), Err((100, 60)));
        l.charge(30).unwrap();
        assert!(
            !l.memory_growing(60, 80, None).unwrap(),
            "30 host bytes held"
        );
        l.refund(30);
        assert!(l.memory_growing(60, 80, None).unwrap());
        assert_eq!(l.memory_peak, 90);
    }

    #[test]
    fn limit_messages_name_the_value() {
        assert_eq!(
            LimitKind::Memory(64 << 20).to_string(),
            "memory limit of 64.0 MiB exceeded"
        );
        assert_eq!(
            LimitKind::WallTime(Duration::from_secs(2)).to_string(),
            "wall-time limit of 2s exceeded"
        );
    }
}
