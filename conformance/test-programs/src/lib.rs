//! Helpers shared by the hostile and edge-case guests in `src/bin/`.
//!
//! Every program prints what it observed to stdout. An attack that works prints `LEAK: <what>: <detail>`
//! (and the program still exits 0, so a test can never mistake a leak for a failure to run); an attack
//! that the sandbox stops prints `denied: <what>: <error>`.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

use std::{fmt::Display, io, path::Path};

// Only some binaries use these.
use getrandom as _;
#[cfg(target_arch = "wasm32")]
use netmind_sdk as _;
#[cfg(target_arch = "wasm32")]
use wit_bindgen as _;

/// Reports one attempt: `LEAK: what: detail` on `Ok(detail)`, `denied: what: error` on `Err(error)`.
///
/// Returns whether the attempt leaked.
pub fn report<T: Display, E: Display>(what: &str, result: Result<T, E>) -> bool {
    match result {
        Ok(detail) => {
            println!("LEAK: {what}: {detail}");
            true
        }
        Err(error) => {
            println!("denied: {what}: {error}");
            false
        }
    }
}

/// Creates a symbolic link at `link` that points to `target` (which is not resolved or checked).
pub fn symlink(target: &str, link: &Path) -> io::Result<()> {
    #[cfg(target_os = "wasi")]
    return wasi_symlink(target, link);
    #[cfg(unix)]
    return std::os::unix::fs::symlink(target, link);
    #[cfg(not(any(target_os = "wasi", unix)))]
    return Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("no symlinks here: {target} {link:?}"),
    ));
}

/// `std::os::wasi::fs::symlink_path` is unstable, so call wasi-libc's `symlink(3)`, which resolves `link`
/// against the preopened directories as every other libc path function does.
#[cfg(target_os = "wasi")]
#[allow(
    unsafe_code,
    reason = "calls wasi-libc directly; std has no stable WASI symlink"
)]
fn wasi_symlink(target: &str, link: &Path) -> io::Result<()> {
    use std::ffi::{CString, c_char, c_int};

    unsafe extern "C" {
        fn symlink(target: *const c_char, link: *const c_char) -> c_int;
    }
    let invalid = |_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL");
    let target = CString::new(target).map_err(invalid)?;
    let link = CString::new(link.to_string_lossy().into_owned()).map_err(invalid)?;
    // SAFETY: both pointers are valid NUL-terminated strings that outlive the call.
    if unsafe { symlink(target.as_ptr(), link.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The first line of `text`, shortened to 80 characters, to show what a leaked file held.
pub fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").chars().take(80).collect()
}

/// The program's first argument, if any.
pub fn first_arg() -> Option<String> {
    std::env::args().nth(1)
}
