//! [`Manifest::validate`]: the rules TOML types can't express.

use std::collections::BTreeSet;

use super::{IoDecl, Manifest, Resources};
use crate::error::{Error, Result};

const MAX_NAME_LEN: usize = 64;
const MIN_MEMORY: u64 = bytesize::MIB;
const MAX_MEMORY: u64 = 16 * bytesize::GIB;

impl Manifest {
    /// Checks the rules TOML types can't express.
    ///
    /// - `name`: 1 to 64 characters from `a-z`, `0-9`, `-`, `_`; `version`: not blank.
    /// - `entry`: a safe relative path (no `..`, `.` or empty parts, not absolute, no `\`),
    ///   not under `assets/`, ending in `.wasm`.
    /// - env keys non-empty without `=` or NUL; args and env values without NUL.
    /// - `memory` from 1 MiB to 16 GiB; `cpu-time`, `wall-time` and `fuel` above zero.
    /// - input and output names: safe relative paths, no duplicates within inputs or within outputs.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidManifest`] describing the first broken rule.
    pub fn validate(&self) -> Result<()> {
        let job = &self.job;
        let name_ok = (1..=MAX_NAME_LEN).contains(&job.name.len())
            && job
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(Error::invalid(format!(
                "[job] name `{}` is invalid: use 1 to {MAX_NAME_LEN} characters from a-z, 0-9, '-' and '_'",
                job.name
            )));
        }
        if job.version.trim().is_empty() {
            return Err(Error::invalid(
                "[job] version is empty: set it, e.g. version = \"0.1.0\"",
            ));
        }
        if let Err(why) = check_relative_path(&job.entry) {
            return Err(Error::invalid(format!("[job] entry `{}` {why}", job.entry)));
        }
        if !job.entry.ends_with(".wasm") {
            return Err(Error::invalid(format!(
                "[job] entry `{}` must name a `.wasm` component",
                job.entry
            )));
        }
        if job.entry.starts_with("assets/") {
            return Err(Error::invalid(format!(
                "[job] entry `{}` must not be under assets/ (that directory is for data files)",
                job.entry
            )));
        }
        for (i, arg) in job.args.iter().enumerate() {
            if arg.contains('\0') {
                return Err(Error::invalid(format!(
                    "[job] args[{i}] contains a NUL byte"
                )));
            }
        }
        for (key, value) in &job.env {
            if key.is_empty() || key.contains(['=', '\0']) {
                return Err(Error::invalid(format!(
                    "[job] env key {key:?} is invalid: it must be non-empty without '=' or NUL"
                )));
            }
            if value.contains('\0') {
                return Err(Error::invalid(format!(
                    "[job] env value of `{key}` contains a NUL byte"
                )));
            }
        }
        self.resources.validate()?;
        check_io_list("inputs", &self.inputs)?;
        check_io_list("outputs", &self.outputs)?;
        Ok(())
    }
}

/// The longest time limit a manifest may ask for.
const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// The most GPU memory a manifest may ask for.
const MAX_GPU_MEMORY: u64 = 256 << 30;

impl Resources {
    fn validate(&self) -> Result<()> {
        let memory = self.memory.as_u64();
        if !(MIN_MEMORY..=MAX_MEMORY).contains(&memory) {
            return Err(Error::invalid(format!(
                "[resources] memory = {memory} bytes is out of range: use 1 MiB to 16 GiB, e.g. memory = \"512 MiB\""
            )));
        }
        for (field, value) in [
            ("cpu-time", self.cpu_time),
            ("wall-time", self.wall_time),
            ("gpu.time", self.gpu.time),
        ] {
            if value.is_zero() {
                return Err(Error::invalid(format!(
                    "[resources] {field} must be above zero, e.g. {field} = \"30s\""
                )));
            }
            if value > MAX_DURATION {
                return Err(Error::invalid(format!(
                    "[resources] {field} is more than 30 days: split the job, e.g. {field} = \"12h\""
                )));
            }
        }
        if self.fuel == Some(0) {
            return Err(Error::invalid(
                "[resources] fuel = 0 would stop the job at once: remove `fuel` for no fuel limit",
            ));
        }
        let gpu_memory = self.gpu.memory.as_u64();
        if !(4..=MAX_GPU_MEMORY).contains(&gpu_memory) {
            return Err(Error::invalid(format!(
                "[resources.gpu] memory = {gpu_memory} bytes is out of range: use 4 bytes to 256 GiB, e.g. memory = \"2 GiB\""
            )));
        }
        if let Some(bad) = self.wasi_nn.iter().find(|e| e.trim().is_empty()) {
            return Err(Error::invalid(format!(
                "[resources] wasi-nn encoding {bad:?} is blank: name one, e.g. \"onnx\""
            )));
        }
        Ok(())
    }
}

fn check_io_list(section: &str, decls: &[IoDecl]) -> Result<()> {
    let mut seen = BTreeSet::new();
    for decl in decls {
        if let Err(why) = check_relative_path(&decl.name) {
            return Err(Error::invalid(format!(
                "[[{section}]] name `{}` {why}",
                decl.name
            )));
        }
        if !seen.insert(decl.name.as_str()) {
            return Err(Error::invalid(format!(
                "[[{section}]] name `{}` is declared twice",
                decl.name
            )));
        }
    }
    Ok(())
}

/// Checks that `path` is a safe, normalized, `/`-separated relative path.
///
/// On failure returns the reason, phrased to follow the path in a message.
pub(crate) fn check_relative_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("is empty: give a relative path");
    }
    if path.starts_with('/') {
        return Err("is absolute: give a path relative to the bundle directory");
    }
    if path.contains('\\') {
        return Err("contains a backslash: separate directories with '/'");
    }
    if path.chars().any(char::is_control) {
        return Err("contains a control character");
    }
    if path.len() > 4096 {
        return Err("is longer than 4096 bytes");
    }
    for part in path.split('/') {
        match part {
            ".." => return Err("contains `..`: paths must stay inside the bundle"),
            "." => return Err("contains a `.` component: remove it"),
            "" => return Err("contains an empty component (`//` or a trailing `/`)"),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytesize::ByteSize;

    use super::*;

    use crate::manifest::tests::{MINIMAL, minimal};

    fn invalid(manifest: &Manifest) -> String {
        match manifest.validate() {
            Err(Error::InvalidManifest(reason)) => reason,
            other => panic!("expected InvalidManifest, got {other:?}"),
        }
    }

    #[test]
    fn unsafe_entry_paths_are_rejected() {
        for (entry, why) in [
            ("../hello.wasm", "`..`"),
            ("bin/../../hello.wasm", "`..`"),
            ("/abs/hello.wasm", "absolute"),
            ("bin\\hello.wasm", "backslash"),
            ("hello.wat", ".wasm"),
            ("", "empty"),
            ("bin//hello.wasm", "empty component"),
            ("./hello.wasm", "`.`"),
            ("assets/hello.wasm", "assets/"),
            ("hel\0lo.wasm", "control"),
        ] {
            let mut m = minimal();
            m.job.entry = entry.to_owned();
            let reason = invalid(&m);
            assert!(reason.contains(why), "{entry:?}: {reason}");
        }
        let mut ok = minimal();
        ok.job.entry = "target/wasm32-wasip2/release/hello.wasm".to_owned();
        ok.validate().unwrap();
    }

    #[test]
    fn job_fields_are_validated() {
        for name in ["", "Hello", "has space", "dots.not.ok", &"a".repeat(65)] {
            let mut m = minimal();
            m.job.name = name.to_owned();
            assert!(invalid(&m).contains("name"), "{name:?}");
        }
        let mut m = minimal();
        m.job.name = "a-b_c9".repeat(10).chars().take(64).collect();
        m.validate().unwrap();

        let mut m = minimal();
        m.job.version = " ".to_owned();
        assert!(invalid(&m).contains("version is empty"));

        for key in ["", "A=B", "A\0"] {
            let mut m = minimal();
            m.job.env.insert(key.to_owned(), "v".to_owned());
            assert!(invalid(&m).contains("env key"), "{key:?}");
        }
        let mut m = minimal();
        m.job.env.insert("K".to_owned(), "v\0".to_owned());
        assert!(invalid(&m).contains("NUL"));
        let mut m = minimal();
        m.job.args.push("a\0b".to_owned());
        assert!(invalid(&m).contains("args[0]"));
    }

    #[test]
    fn resource_ranges_are_enforced() {
        let mut m = minimal();
        m.resources.memory = ByteSize::kib(1023);
        assert!(invalid(&m).contains("memory"));
        m.resources.memory = ByteSize::mib(1);
        m.validate().unwrap();
        m.resources.memory = ByteSize::gib(16);
        m.validate().unwrap();
        m.resources.memory = ByteSize::b(16 * bytesize::GIB + 1);
        assert!(invalid(&m).contains("memory"));

        let mut m = minimal();
        m.resources.wall_time = Duration::ZERO;
        assert!(invalid(&m).contains("wall-time"));
        let mut m = minimal();
        m.resources.cpu_time = Duration::ZERO;
        assert!(invalid(&m).contains("cpu-time"));
        let mut m = minimal();
        m.resources.fuel = Some(0);
        assert!(invalid(&m).contains("fuel"));

        // from_toml validates too.
        let err = Manifest::from_toml(&format!("{MINIMAL}[resources]\nmemory = \"32 GiB\"\n"))
            .unwrap_err();
        assert!(matches!(err, Error::InvalidManifest(_)), "{err}");
    }

    #[test]
    fn io_names_are_safe_and_unique() {
        let decl = |name: &str| IoDecl {
            name: name.to_owned(),
            description: None,
            required: true,
        };
        let mut m = minimal();
        m.inputs = vec![decl("a.txt"), decl("dir/b.txt")];
        m.outputs = vec![decl("a.txt")];
        m.validate().unwrap();

        m.inputs.push(decl("a.txt"));
        assert!(invalid(&m).contains("[[inputs]] name `a.txt` is declared twice"));

        let mut m = minimal();
        m.outputs = vec![decl("out"), decl("out")];
        assert!(invalid(&m).contains("[[outputs]]"));

        for bad in ["../x", "/etc/passwd", "a\\b", ""] {
            let mut m = minimal();
            m.outputs = vec![decl(bad)];
            assert!(invalid(&m).contains("[[outputs]] name"), "{bad:?}");
        }
    }
}
