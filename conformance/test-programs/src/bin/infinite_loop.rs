//! Never returns. `infinite_loop [spin|sleep]`: `spin` (the default) burns CPU in a loop the optimiser
//! cannot remove (stopped by fuel or epoch interruption); `sleep` blocks in the host forever (stopped only
//! by a wall-clock limit).
//!
//! Run with: `netmind run target/guests/wasm32-wasip2/release/infinite_loop.wasm`

use std::hint::black_box;

fn main() {
    let mode = netmind_test_programs::first_arg().unwrap_or_else(|| "spin".to_owned());
    println!("looping forever: {mode}");
    if mode == "sleep" {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    let mut counter = 0u64;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}
