//! The NetMind sandbox: runs untrusted WebAssembly jobs with no ambient authority.
//!
//! A [`Runtime`] is one wasmtime engine configured for hostile guests (pooling
//! allocator, epoch interruption, optional fuel, bounded stack, optional
//! deterministic mode) and a cache of compiled jobs on disk. [`Runtime::load`]
//! gives a [`Job`], which [`Job::run`]s any number of times, each run in a
//! fresh instance that sees only:
//!
//! - the args and env it is given (nothing of the host's environment),
//! - stdin if given, stdout/stderr captured with a byte cap,
//! - a read-only `/input`, a read-only `/assets`, and a writable `/output`
//!   held to byte and file-count quotas,
//! - clocks and random (fixed and seeded in deterministic mode).
//!
//! No sockets, no other files. Linear memory, tables, CPU time, wall time,
//! fuel, stack and output are bounded; the [`RunReport`] says which limit
//! stopped a job and what it used.
//!
//! ```no_run
//! use netmind_host::{Runtime, SandboxConfig, RunOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::new(SandboxConfig::default())?;
//! let job = runtime.load(&std::fs::read("samples/hello/hello.wasm")?)?;
//! let out = tempfile::tempdir()?;
//! let report = job.run(&RunOptions {
//!     args: vec!["hello".into()],
//!     output_dir: out.path().into(),
//!     ..Default::default()
//! })?;
//! println!("{} in {:?}", report.termination, report.wall_time);
//! # Ok(()) }
//! ```

mod core;
mod error;
pub mod gpu;
pub mod limits;
pub mod nn;
pub mod output;
mod poll;
mod run;
mod runtime;
pub mod stdio;

pub use error::{Error, Result};
pub use gpu::{GpuConfig, GpuLimits, GpuUsage};
pub use limits::{JobLimits, LimitKind};
pub use run::{NnUsage, RunOptions, RunReport, Termination};
pub use runtime::{Job, Runtime, SandboxConfig, WasmKind, default_cache_dir, list_imports};
pub use stdio::{Progress, RunObserver};
