//! Tries to reach the host's file system outside `/input` and `/output`, and to write to `/input`.
//! Each attempt prints `denied: <what>: <error>` or `LEAK: <what>: <detail>`.
//!
//! The test that runs it creates `/input/link` (a symlink to a host file outside the input directory) and
//! `/input/dirlink` (a symlink to `/etc`).
//!
//! Run with: `netmind run target/guests/wasm32-wasip2/release/escape_fs.wasm --input DIR --output DIR`

use std::{fs, path::Path};

use netmind_test_programs::{first_line, report, symlink};

fn read(path: &str) -> std::io::Result<String> {
    fs::read(path).map(|bytes| first_line(&String::from_utf8_lossy(&bytes)))
}

fn list(path: &str) -> std::io::Result<String> {
    let mut names = fs::read_dir(path)?
        .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<Vec<_>>>()?;
    names.sort();
    Ok(format!("{} entries: {}", names.len(), names.join(" ")))
}

fn main() {
    let mut leaks = 0;
    for path in [
        "/etc/passwd",
        "/input/../../../../etc/passwd",
        "/input/../etc/passwd",
        "/input/link",
        "/input/dirlink/passwd",
    ] {
        leaks += usize::from(report(&format!("read {path}"), read(path)));
    }

    leaks += usize::from(report(
        "write /input/x",
        fs::write("/input/x", b"x").map(|()| "wrote to the read-only input"),
    ));

    match symlink("/etc/passwd", Path::new("/output/evil")) {
        Ok(()) => println!("created symlink /output/evil -> /etc/passwd"),
        Err(error) => println!("denied: symlink /output/evil -> /etc/passwd: {error}"),
    }
    leaks += usize::from(report("read /output/evil", read("/output/evil")));

    match symlink("../../../../", Path::new("/output/up")) {
        Ok(()) => println!("created symlink /output/up -> ../../../../"),
        Err(error) => println!("denied: symlink /output/up -> ../../../../: {error}"),
    }
    leaks += usize::from(report("list /output/up", list("/output/up")));

    leaks += usize::from(report("list /", list("/")));
    leaks += usize::from(report(
        "open .",
        fs::File::open(".").and_then(|_| list(".")),
    ));

    println!("done: {leaks} leak(s)");
}
