//! Records the sources of non-determinism a guest can observe, one `key=value` line each, to
//! `/output/det.txt` (and stdout): wall-clock time, a monotonic clock reading over a busy loop, 32 random
//! bytes and the bit patterns of NaNs produced by arithmetic (which a host that canonicalises NaNs makes
//! identical on every machine).
//!
//! Run with: `netmind run target/guests/wasm32-wasip2/release/determinism.wasm --output DIR`

use std::{
    fmt::Write as _,
    hint::black_box,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

fn main() {
    let mut out = String::new();

    let now = match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_nanos().to_string(),
        Err(error) => format!("before the epoch: {error}"),
    };
    writeln!(out, "time_unix_nanos={now}").unwrap();

    let start = Instant::now();
    let mut counter = 0u64;
    for i in 0..1_000_000u64 {
        counter = black_box(counter.wrapping_add(i));
    }
    writeln!(
        out,
        "instant_busy_loop_nanos={}",
        start.elapsed().as_nanos()
    )
    .unwrap();

    let mut random = [0u8; 32];
    let random = match getrandom::fill(&mut random) {
        Ok(()) => random.iter().fold(String::new(), |mut hex, b| {
            write!(hex, "{b:02x}").unwrap();
            hex
        }),
        Err(error) => format!("unavailable: {error}"),
    };
    writeln!(out, "random={random}").unwrap();

    let nan32 = black_box(0.0f32) / black_box(0.0f32);
    writeln!(out, "nan_f32_bits={:#010x}", nan32.to_bits()).unwrap();
    let nan64 = black_box(f64::from_bits(0x7ff4_0000_0000_0001)) + black_box(1.0f64);
    writeln!(out, "nan_f64_bits={:#018x}", nan64.to_bits()).unwrap();

    print!("{out}");
    if let Err(error) = std::fs::write("/output/det.txt", &out) {
        println!("error: write /output/det.txt: {error}");
        std::process::exit(1);
    }
}
