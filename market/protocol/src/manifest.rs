//! `netmind.toml`: what a job is, what it needs and what it reads and writes.
//!
//! ```toml
//! [job]
//! name = "hello"
//! version = "0.1.0"
//! entry = "hello.wasm"
//! args = ["--greeting", "hi"]
//!
//! [resources]
//! memory = "512 MiB"
//! wall-time = "2m"
//!
//! [[inputs]]
//! name = "input.txt"
//!
//! [[outputs]]
//! name = "out/result.json"
//! ```
//!
//! Every `[resources]` field has a default (see [`Resources::default`]). Unknown fields anywhere are
//! errors, so a typo like `memroy` is caught rather than silently ignored.

use std::{collections::BTreeMap, time::Duration};

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use crate::{
    error::{Error, Result},
    units,
};

mod validate;

pub(crate) use validate::check_relative_path;

/// The manifest's file name, at the root of a bundle directory and first in a packed bundle.
pub const MANIFEST_FILE: &str = "netmind.toml";

/// The largest manifest accepted, in bytes.
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// A parsed `netmind.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// `[job]`: identity and how to start it.
    pub job: JobSection,
    /// `[resources]`: limits the host enforces.
    #[serde(default)]
    pub resources: Resources,
    /// `[[inputs]]`: files the job reads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<IoDecl>,
    /// `[[outputs]]`: files the job writes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<IoDecl>,
}

/// `[job]`: the job's identity and how to start it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct JobSection {
    /// 1 to 64 characters from `a-z`, `0-9`, `-` and `_`.
    pub name: String,
    /// Free-form, non-empty (semver recommended).
    pub version: String,
    /// One line for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Relative path of the wasm component inside the bundle directory, e.g. `hello.wasm`.
    pub entry: String,
    /// Command-line arguments passed to the component (`argv[1..]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment variables visible to the component.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// `[resources]`: what the job may use. Every field has a default.
///
/// Sizes are written `"512MiB"`, `"64 MiB"` or as a plain number of bytes; durations as
/// `"30s"`, `"2m"`, `"1h 30m"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Resources {
    /// Linear memory cap (default 256 MiB; 1 MiB to 16 GiB).
    #[serde(with = "units::size")]
    pub memory: ByteSize,
    /// Wasmtime fuel budget; `None` (the default) means no fuel metering.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// CPU time budget (default 60 s).
    #[serde(with = "units::duration")]
    pub cpu_time: Duration,
    /// Wall-clock budget (default 120 s).
    #[serde(with = "units::duration")]
    pub wall_time: Duration,
    /// Total bytes the job may write as outputs (default 64 MiB).
    #[serde(with = "units::size")]
    pub output_bytes: ByteSize,
    /// Number of output files the job may create (default 1000).
    pub output_files: u64,
    /// Cap on captured stdout, and separately on stderr (default 1 MiB each).
    #[serde(with = "units::size")]
    pub stdout_bytes: ByteSize,
    /// wasi-nn graph encodings the job needs, e.g. `"onnx"` (default none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub wasi_nn: Vec<String>,
    /// `[resources.gpu]`: GPU requirement (default: not required).
    pub gpu: GpuNeed,
}

impl Default for Resources {
    fn default() -> Self {
        Self {
            memory: ByteSize::mib(256),
            fuel: None,
            cpu_time: Duration::from_secs(60),
            wall_time: Duration::from_secs(120),
            output_bytes: ByteSize::mib(64),
            output_files: 1000,
            stdout_bytes: ByteSize::mib(1),
            wasi_nn: Vec::new(),
            gpu: GpuNeed::default(),
        }
    }
}

/// `[resources.gpu]`: whether the job needs a GPU, how much memory on it, and the job's GPU quotas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct GpuNeed {
    /// Only hosts with a GPU may run the job.
    pub required: bool,
    /// Minimum GPU memory.
    #[serde(with = "units::opt_size", skip_serializing_if = "Option::is_none")]
    pub min_vram: Option<ByteSize>,
    /// GPU memory the job's buffers may hold at once (default 1 GiB).
    #[serde(with = "units::size")]
    pub memory: ByteSize,
    /// GPU time the job may use (default 60 s).
    #[serde(with = "units::duration")]
    pub time: Duration,
}

impl Default for GpuNeed {
    fn default() -> Self {
        Self {
            required: false,
            min_vram: None,
            memory: ByteSize::gib(1),
            time: Duration::from_secs(60),
        }
    }
}

/// One `[[inputs]]` or `[[outputs]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IoDecl {
    /// Relative path the job sees, e.g. `data/input.csv`.
    pub name: String,
    /// One line for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether the job fails without it (default `true`).
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

impl Manifest {
    /// Parses and [validates](Self::validate) a manifest.
    ///
    /// # Errors
    ///
    /// [`Error::ManifestSyntax`] naming the line, column and table of bad TOML, an unknown or missing
    /// field or a bad value; [`Error::InvalidManifest`] when a rule of [`validate`](Self::validate) is
    /// broken.
    pub fn from_toml(text: &str) -> Result<Self> {
        Self::parse(text, MANIFEST_FILE)
    }

    /// [`from_toml`](Self::from_toml), naming `origin` (a path) in syntax errors.
    pub(crate) fn parse(text: &str, origin: &str) -> Result<Self> {
        let manifest: Self = toml::from_str(text).map_err(|e| {
            let (location, detail) = describe_toml_error(text, &e);
            Error::ManifestSyntax {
                origin: format!("{origin}{location}"),
                detail,
            }
        })?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Writes the manifest as TOML that [`from_toml`](Self::from_toml) reads back unchanged.
    ///
    /// The output is deterministic (env is sorted), so packed bundles are reproducible.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a manifest always serializes to TOML")
    }
}

/// Splits a TOML error into a `:line:column` suffix for the file name and a message that ends with
/// the table it is in, e.g. `unknown field `memroy`, expected one of ... (in [resources])`.
fn describe_toml_error(text: &str, err: &toml::de::Error) -> (String, String) {
    let message = err.message().trim_end();
    let Some(span) = err.span() else {
        return (String::new(), message.to_owned());
    };
    let start = span.start.min(text.len());
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..start].chars().count() + 1;
    let this_line = text[line_start..].lines().next().unwrap_or("").trim();
    let context = if this_line.starts_with('[') {
        format!(" (at `{this_line}`)")
    } else {
        before
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))
            .map(|header| format!(" (in {header})"))
            .unwrap_or_default()
    };
    (format!(":{line}:{column}"), format!("{message}{context}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const MINIMAL: &str = r#"
[job]
name = "hello"
version = "0.1.0"
entry = "hello.wasm"
"#;

    pub(super) fn minimal() -> Manifest {
        Manifest::from_toml(MINIMAL).unwrap()
    }

    fn syntax_error(text: &str) -> String {
        match Manifest::from_toml(text) {
            Err(e @ Error::ManifestSyntax { .. }) => e.to_string(),
            other => panic!("expected ManifestSyntax, got {other:?}"),
        }
    }

    #[test]
    fn defaults_fill_everything_but_job() {
        let m = minimal();
        assert_eq!(m.resources, Resources::default());
        let r = &m.resources;
        assert_eq!(r.memory, ByteSize::mib(256));
        assert_eq!(r.fuel, None);
        assert_eq!(r.cpu_time, Duration::from_secs(60));
        assert_eq!(r.wall_time, Duration::from_secs(120));
        assert_eq!(r.output_bytes, ByteSize::mib(64));
        assert_eq!(r.output_files, 1000);
        assert_eq!(r.stdout_bytes, ByteSize::mib(1));
        assert_eq!(
            r.gpu,
            GpuNeed {
                required: false,
                min_vram: None,
                memory: ByteSize::gib(1),
                time: Duration::from_secs(60),
            }
        );
        assert!(r.wasi_nn.is_empty());
        assert!(m.inputs.is_empty() && m.outputs.is_empty());
        assert!(m.job.args.is_empty() && m.job.env.is_empty() && m.job.description.is_none());

        let partial = Manifest::from_toml(&format!("{MINIMAL}[resources]\nfuel = 5\n")).unwrap();
        assert_eq!(partial.resources.fuel, Some(5));
        assert_eq!(partial.resources.memory, ByteSize::mib(256));
    }

    #[test]
    fn full_manifest_round_trips() {
        let text = r#"
[job]
name = "blur_2"
version = "1.2.3"
description = "Blurs a PNG"
entry = "bin/blur.wasm"
args = ["--radius", "3"]
env = { RUST_LOG = "info", MODE = "fast" }

[resources]
memory = "512MiB"
fuel = 1000000
cpu-time = "1m 30s"
wall-time = "2m"
output-bytes = 1048577
output-files = 3
stdout-bytes = "64 KiB"
wasi-nn = ["onnx"]
gpu = { required = true, min-vram = "8 GiB" }

[[inputs]]
name = "in/photo.png"
description = "the picture"

[[outputs]]
name = "out.png"
required = false
"#;
        let m = Manifest::from_toml(text).unwrap();
        assert_eq!(m.resources.memory, ByteSize::mib(512));
        assert_eq!(m.resources.cpu_time, Duration::from_secs(90));
        assert_eq!(m.resources.output_bytes, ByteSize::b(1_048_577));
        assert_eq!(m.resources.gpu.min_vram, Some(ByteSize::gib(8)));
        assert!(m.inputs[0].required, "required defaults to true");
        assert!(!m.outputs[0].required);
        assert_eq!(m.job.env["MODE"], "fast");

        let written = m.to_toml();
        assert_eq!(Manifest::from_toml(&written).unwrap(), m, "{written}");
        assert!(written.contains("memory = \"512 MiB\""), "{written}");
        assert!(written.contains("cpu-time = \"1m 30s\""), "{written}");
        assert!(written.contains("output-bytes = 1048577"), "{written}");
        assert_eq!(minimal().to_toml(), minimal().to_toml());
        assert_eq!(
            Manifest::from_toml(&minimal().to_toml()).unwrap(),
            minimal()
        );
    }

    #[test]
    fn sizes_parse_with_and_without_units() {
        for (text, bytes) in [
            ("\"512MiB\"", 512 * bytesize::MIB),
            ("\"512 MiB\"", 512 * bytesize::MIB),
            ("1048576", bytesize::MIB),
            ("\"1048576\"", bytesize::MIB),
            ("\"2GiB\"", 2 * bytesize::GIB),
            ("\"1.5 GiB\"", 1536 * bytesize::MIB),
            ("\"100 MB\"", 100_000_000),
        ] {
            let m = Manifest::from_toml(&format!("{MINIMAL}[resources]\nmemory = {text}\n"))
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(m.resources.memory.as_u64(), bytes, "{text}");
            let again = Manifest::from_toml(&m.to_toml()).unwrap();
            assert_eq!(
                again.resources.memory.as_u64(),
                bytes,
                "{text} after round trip"
            );
        }
        let bad = syntax_error(&format!("{MINIMAL}[resources]\nmemory = \"lots\"\n"));
        assert!(bad.contains("invalid size `lots`"), "{bad}");
        let negative = syntax_error(&format!("{MINIMAL}[resources]\nmemory = -5\n"));
        assert!(negative.contains("negative"), "{negative}");
    }

    #[test]
    fn durations_parse_humantime() {
        for (text, secs) in [("30s", 30), ("2m", 120), ("1h 30m", 5400), ("2min", 120)] {
            let m = Manifest::from_toml(&format!("{MINIMAL}[resources]\nwall-time = \"{text}\"\n"))
                .unwrap();
            assert_eq!(m.resources.wall_time, Duration::from_secs(secs), "{text}");
        }
        let ms =
            Manifest::from_toml(&format!("{MINIMAL}[resources]\ncpu-time = \"1500ms\"\n")).unwrap();
        assert_eq!(Manifest::from_toml(&ms.to_toml()).unwrap(), ms);
        let bare = syntax_error(&format!("{MINIMAL}[resources]\nwall-time = 30\n"));
        assert!(bare.contains("a duration such as"), "{bare}");
        let bad = syntax_error(&format!("{MINIMAL}[resources]\nwall-time = \"soon\"\n"));
        assert!(bad.contains("invalid duration `soon`"), "{bad}");
    }

    #[test]
    fn unknown_fields_are_named() {
        let top = syntax_error(&format!("{MINIMAL}[jobs]\nname = \"x\"\n"));
        assert!(top.contains("unknown field `jobs`"), "{top}");
        assert!(top.starts_with("netmind.toml:6:"), "{top}");

        let nested = syntax_error(&format!("{MINIMAL}[resources]\nmemroy = \"1 GiB\"\n"));
        assert!(nested.contains("unknown field `memroy`"), "{nested}");
        assert!(nested.contains("expected one of"), "{nested}");
        assert!(nested.contains("(in [resources])"), "{nested}");
        assert!(nested.starts_with("netmind.toml:7:1: "), "{nested}");

        let in_job = syntax_error(
            "[job]\nname = \"a\"\nversion = \"1\"\nentry = \"a.wasm\"\nentrypoint = \"x\"\n",
        );
        assert!(in_job.contains("unknown field `entrypoint`"), "{in_job}");

        let quotas = Manifest::from_toml(&format!(
            "{MINIMAL}[resources.gpu]\nmemory = \"2 GiB\"\ntime = \"90s\"\n"
        ))
        .unwrap();
        assert_eq!(quotas.resources.gpu.memory, ByteSize::gib(2));
        assert_eq!(quotas.resources.gpu.time, Duration::from_secs(90));
        for (bad, needle) in [
            (
                "[resources.gpu]\ntime = \"0s\"\n",
                "gpu.time must be above zero",
            ),
            ("[resources.gpu]\nmemory = \"512 GiB\"\n", "out of range"),
            (
                "[resources]\nwall-time = \"300000000000y\"\n",
                "more than 30 days",
            ),
        ] {
            let err = Manifest::from_toml(&format!("{MINIMAL}{bad}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{bad}: {err}");
        }
        let gpu = syntax_error(&format!("{MINIMAL}[resources.gpu]\nvram = 1\n"));
        assert!(gpu.contains("unknown field `vram`"), "{gpu}");
        let io = syntax_error(&format!(
            "{MINIMAL}[[inputs]]\nname = \"a\"\noptional = true\n"
        ));
        assert!(io.contains("unknown field `optional`"), "{io}");
    }

    #[test]
    fn missing_entry_is_reported() {
        let err = syntax_error("[job]\nname = \"hello\"\nversion = \"1\"\n");
        assert!(err.contains("missing field `entry`"), "{err}");
        let no_job = syntax_error("[resources]\nmemory = 1048576\n");
        assert!(no_job.contains("missing field `job`"), "{no_job}");
    }
}
