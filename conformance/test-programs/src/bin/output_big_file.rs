//! Writes 1 MiB chunks to `/output/big.bin` forever, until a write fails (`denied: output bytes: ...`,
//! exit 1). `output_big_file MAX_MIB` stops after `MAX_MIB` MiB instead (`ok: wrote N MiB`, exit 0), for
//! hosts that check the output's size after the run.
//!
//! Run with: `netmind run target/guests/wasm32-wasip2/release/output_big_file.wasm`

use std::{fs::File, io::Write};

const MIB: usize = 1 << 20;

fn main() {
    let max: Option<u64> = netmind_test_programs::first_arg().and_then(|arg| arg.parse().ok());
    let mut file = match File::create("/output/big.bin") {
        Ok(file) => file,
        Err(error) => {
            println!("denied: output bytes: create /output/big.bin: {error}");
            std::process::exit(1);
        }
    };
    let chunk = vec![0x5A; MIB];
    let mut written = 0u64;
    loop {
        if max == Some(written) {
            println!("ok: wrote {written} MiB");
            return;
        }
        if let Err(error) = file.write_all(&chunk) {
            println!("denied: output bytes: write failed after {written} MiB: {error}");
            std::process::exit(1);
        }
        written += 1;
        if written.is_multiple_of(16) {
            println!("wrote {written} MiB");
        }
    }
}
