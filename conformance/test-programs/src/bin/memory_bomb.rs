//! Allocates and touches memory 1 MiB at a time until an allocation fails, then prints how much it got
//! and aborts (a trap). `memory_bomb [MAX_MIB]` stops after `MAX_MIB` MiB instead, printing
//! `ok: allocated N MiB` and exiting 0.
//!
//! Run with: `netmind run target/guests/wasm32-wasip2/release/memory_bomb.wasm`

use std::hint::black_box;

const MIB: usize = 1 << 20;

fn main() {
    let max: Option<usize> = netmind_test_programs::first_arg().and_then(|arg| arg.parse().ok());
    println!("allocating 1 MiB blocks (max: {max:?})");
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        let got = blocks.len();
        if max == Some(got) {
            println!("ok: allocated {got} MiB");
            return;
        }
        let mut block = Vec::new();
        if let Err(error) = blocks
            .try_reserve(1)
            .and_then(|()| block.try_reserve_exact(MIB))
        {
            println!("denied: memory: allocation failed after {got} MiB: {error}");
            std::process::abort();
        }
        // Touch every page so the memory is really used.
        block.resize(MIB, 0xA5);
        blocks.push(black_box(block));
        if (got + 1).is_multiple_of(16) {
            println!("allocated {} MiB", got + 1);
        }
    }
}
