//! The NetMind guest SDK: what a job author links to read inputs, write outputs and report progress.
//!
//! A NetMind job is a WebAssembly component (WASI preview 2, target `wasm32-wasip2`) that the host runs
//! in a sandbox. The sandbox shows the job these directories and nothing else of the host's file system:
//!
//! - [`INPUT_DIR`] (`/input`), read-only: the files passed with `netmind run --input DIR`;
//! - [`OUTPUT_DIR`] (`/output`), writable: everything written there is returned to the job owner;
//! - [`ASSETS_DIR`] (`/assets`), read-only, when the job's bundle has assets (models, data).
//!
//! The job's arguments and environment come from its manifest (`netmind.toml`) and the command line.
//! Progress lines written to stderr with [`progress`] are parsed by the host, and [`run`] stores the job's
//! structured result in `/output/result.json`.
//!
//! [`nn`] runs machine-learning models on the host's backends through wasi-nn, [`gpu`] runs WGSL compute
//! shaders on the host's GPU, and [`npy`] reads and writes NumPy `.npy` files as tensors or as raw
//! arrays of any numeric dtype.
//!
//! The crate also compiles for `wasm32-wasip1` and for the host, so job logic can be unit tested natively
//! (the [`nn`] and [`gpu`] calls themselves only work inside a NetMind host; natively every [`gpu`] call
//! fails with [`gpu::Error::NoAdapter`]).
//!
//! # Example
//!
//! A job that counts the lines of every input file:
//!
//! ```no_run
//! use std::process::ExitCode;
//!
//! fn main() -> ExitCode {
//!     netmind_sdk::run(|| {
//!         let inputs = netmind_sdk::inputs()?;
//!         let total = inputs.len() as u64;
//!         let mut counts = Vec::new();
//!         for (i, input) in inputs.iter().enumerate() {
//!             let text = netmind_sdk::read_input_to_string(&input.name)?;
//!             counts.push((input.name.clone(), text.lines().count()));
//!             netmind_sdk::progress(i as u64 + 1, total, &input.name);
//!         }
//!         netmind_sdk::write_output_json("lines.json", &counts)?;
//!         // Becomes `{"ok": true, "value": <number of files>}` in /output/result.json.
//!         Ok(counts.len())
//!     })
//! }
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` and run it with
//! `netmind run path/to/bundle --input DIR`.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod error;
mod files;
pub mod gpu;
pub mod nn;
pub mod npy;
mod progress;
mod result;

pub use error::{Error, Result};
pub use files::{
    ASSETS_DIR, INPUT_DIR, Input, OUTPUT_DIR, asset_path, input_path, inputs, output_path,
    read_asset, read_input, read_input_to_string, write_output, write_output_json,
};
pub use progress::{PROGRESS_PREFIX, Progress, progress};
pub use result::{RESULT_FILE, run};

/// The job's arguments, without the program name (`argv[0]`).
///
/// These are the arguments the host passes: the manifest's `job.args` and those given to `netmind run`.
/// Arguments that are not valid Unicode are converted lossily.
pub fn args() -> Vec<String> {
    std::env::args_os()
        .skip(1)
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect()
}

/// The value of the environment variable `key`, or `None` when it is unset or not valid Unicode.
///
/// The sandbox shows a job only the variables set in its manifest's `[job.env]` table and with
/// `netmind run --env`; the host's own environment is never visible.
pub fn env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}
