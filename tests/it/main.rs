//! End-to-end tests of the `netmind` CLI over the real samples.

mod bundle;
mod chain_network;
mod devnet;
mod gpu;
mod host;
mod market;
mod mixed;
mod nn;
mod run;
mod telemetry;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) fn netmind(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netmind"))
        .args(args)
        .env("NETMIND_CACHE_DIR", cache_dir())
        .env_remove("NETMIND_KEY_PASSWORD")
        .output()
        .expect("spawn netmind")
}

fn cache_dir() -> PathBuf {
    std::env::temp_dir().join(format!("netmind-cli-test-cache-{}", std::process::id()))
}

/// `netmind bundle pack DIR -o OUT [EXTRA...]`.
pub(crate) fn pack(dir: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "bundle",
        "pack",
        dir.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    netmind(&args)
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A copy of `samples/NAME` (with its built component) in a temp dir.
pub(crate) fn sample(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let src = Path::new(netmind_samples_artifacts::SAMPLES_DIR).join(name);
    let dst = tmp.path().join(name);
    copy_dir(&src, &dst);
    (tmp, dst)
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            if e.file_name() != "src" {
                copy_dir(&e.path(), &to);
            }
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

/// A keystore with a known password.
pub(crate) fn keystore(dir: &Path) -> (PathBuf, PathBuf, String) {
    let pw = dir.join("pw");
    std::fs::write(&pw, "correct horse\n").unwrap();
    let ks = dir.join("key.json");
    let o = netmind(&[
        "wallet",
        "new",
        ks.to_str().unwrap(),
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    (ks, pw, stdout(&o).trim().to_string())
}
