//! Looks for what an earlier job left in memory. Hosts reuse memory slots
//! between jobs (pooling allocator, resident pages); each job must still start
//! from zeroed memory.
//!
//! - `memory_residue write`: fills 16 MiB of heap and 16 MiB of freshly grown
//!   memory with the marker byte 0xA5, then exits;
//! - `memory_residue read`: grows 16 MiB and scans all of its linear memory for
//!   a run of 64 marker bytes: prints `LEAK: ...` if it finds one, else `clean`.
//!
//! Run with: `netmind run target/guests/wasm32-wasip2/release/memory_residue.wasm -- write`

const MARKER: u8 = 0xA5;
const PAGE: usize = 64 * 1024;
const PAGES: usize = 256;

#[cfg(target_arch = "wasm32")]
#[allow(
    unsafe_code,
    reason = "reads and writes raw linear memory: that is the point of this probe"
)]
fn main() {
    let write = netmind_test_programs::first_arg().as_deref() == Some("write");
    let mut heap = Vec::new();
    if write {
        heap.resize(PAGES * PAGE, MARKER);
    }
    let old = core::arch::wasm32::memory_grow(0, PAGES);
    if old == usize::MAX {
        println!("denied: memory.grow of {PAGES} pages");
        return;
    }
    let grown = (old * PAGE) as *mut u8;
    if write {
        for i in 0..PAGES * PAGE {
            // SAFETY: the region was just grown, so it is in bounds and unused.
            unsafe { grown.add(i).write_volatile(MARKER) };
        }
        println!(
            "wrote markers ({} bytes of heap)",
            std::hint::black_box(&heap).len()
        );
        return;
    }
    let total = core::arch::wasm32::memory_size(0) * PAGE;
    let mut run = 0usize;
    // Address 0 is never dereferenced by Rust, but wasm memory starts there; start at 1.
    for addr in 1..total {
        // SAFETY: every address below memory_size is in bounds of linear memory.
        let byte = unsafe { (addr as *const u8).read_volatile() };
        run = if byte == MARKER { run + 1 } else { 0 };
        if run == 64 {
            println!("LEAK: an earlier job's marker bytes at {:#x}", addr - 63);
            return;
        }
    }
    println!("clean: scanned {total} bytes");
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    println!("wasm only");
    let _ = (MARKER, PAGE, PAGES);
}
