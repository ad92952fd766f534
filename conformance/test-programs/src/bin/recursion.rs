//! Recurses without bound (not a tail call, with a 1 KiB frame that is kept alive) until the stack runs
//! out, which must trap rather than crash the host.
//!
//! Run with: `netmind run target/guests/wasm32-wasip2/release/recursion.wasm`

use std::hint::black_box;

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 1024];
    let slot = (depth % 1024) as usize;
    frame[slot] = depth as u8;
    black_box(&mut frame);
    if depth.is_multiple_of(10_000) {
        println!("depth {depth}");
    }
    // Never true, but the compiler cannot know that, so the recursion is not "unconditional".
    if black_box(depth) == u64::MAX {
        return 0;
    }
    let below = recurse(depth + 1);
    // Using the frame after the call keeps it (and the call) from being optimised into a loop.
    below.wrapping_add(u64::from(black_box(&frame)[slot]))
}

fn main() {
    println!("recursing without bound");
    let sum = recurse(0);
    println!("LEAK: recursion returned {sum}");
}
