//! Creates tiny files `/output/f0000000`, `/output/f0000001`, ... up to 1,000,000 of them, until creating
//! one fails (`denied: output files: ...`, exit 1). Creating them all prints `LEAK: ...`.
//! `output_many_files N` creates only `N` files and prints `ok: created N files`.
//!
//! Run with: `netmind run target/guests/wasm32-wasip2/release/output_many_files.wasm`

const DEFAULT_COUNT: u64 = 1_000_000;

fn main() {
    let arg: Option<u64> = netmind_test_programs::first_arg().and_then(|arg| arg.parse().ok());
    let count = arg.unwrap_or(DEFAULT_COUNT);
    for i in 0..count {
        let path = format!("/output/f{i:07}");
        if let Err(error) = std::fs::write(&path, b"x") {
            println!("denied: output files: creating {path} failed after {i} files: {error}");
            std::process::exit(1);
        }
        if (i + 1).is_multiple_of(10_000) {
            println!("created {} files", i + 1);
        }
    }
    if arg.is_some() {
        println!("ok: created {count} files");
    } else {
        println!("LEAK: output files: created {count} files in /output");
    }
}
