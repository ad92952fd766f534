//! Writes 1 KiB lines to stdout forever. When a write fails it reports `denied: stdout: ...` on stderr and
//! exits 1.
//!
//! Run with: `netmind run target/guests/wasm32-wasip2/release/stdout_flood.wasm`

use std::io::Write;

fn main() {
    let mut line = vec![b'x'; 1023];
    line.push(b'\n');
    let mut stdout = std::io::stdout().lock();
    let mut lines = 0u64;
    loop {
        if let Err(error) = stdout.write_all(&line) {
            eprintln!("denied: stdout: write failed after {lines} KiB: {error}");
            std::process::exit(1);
        }
        lines += 1;
    }
}
