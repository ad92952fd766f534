//! Recurses without bound until a stack runs out, which must trap rather than crash the host.
//!
//! - no argument (`native`): small frames that live on the wasm stack, which the
//!   host bounds with `max_wasm_stack`: the job is stopped with a stack-limit error;
//! - `shadow`: 1 KiB frames on the guest's own shadow stack in linear memory, which
//!   overflows into an out-of-bounds access: a trap confined to the guest.
//!
//! Run with: `netmind run target/guests/wasm32-wasip2/release/recursion.wasm [-- shadow]`

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

/// Never reached; read through an atomic so the compiler cannot prove the recursion unbounded.
static SENTINEL: AtomicU64 = AtomicU64::new(u64::MAX);

#[inline(never)]
fn native(depth: u64) -> u64 {
    if depth == SENTINEL.load(Ordering::Relaxed) {
        return 0;
    }
    // Using the result after the call keeps it from becoming a loop.
    native(depth + 1).rotate_left(3) ^ depth
}

#[inline(never)]
fn shadow(depth: u64) -> u64 {
    let mut frame = [0u8; 1024];
    let slot = (depth % 1024) as usize;
    frame[slot] = depth as u8;
    black_box(&mut frame);
    if depth == SENTINEL.load(Ordering::Relaxed) {
        return 0;
    }
    let below = shadow(depth + 1);
    below.wrapping_add(u64::from(black_box(&frame)[slot]))
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "native".into());
    println!("recursing without bound ({mode})");
    let sum = if mode == "shadow" {
        shadow(0)
    } else {
        native(0)
    };
    println!("LEAK: recursion returned {sum}");
}
