//! Traps on purpose. `trap [abort|unreachable|panic]`: `abort` (the default) calls
//! `std::process::abort`, `unreachable` executes the wasm `unreachable` instruction and `panic` panics.
//!
//! Run with: `netmind run target/guests/wasm32-wasip2/release/trap.wasm -- unreachable`

fn main() {
    let mode = netmind_test_programs::first_arg().unwrap_or_else(|| "abort".to_owned());
    println!("about to trap: {mode}");
    match mode.as_str() {
        "abort" => std::process::abort(),
        "panic" => panic!("the trap test program panics on purpose"),
        "unreachable" => {
            #[cfg(target_arch = "wasm32")]
            core::arch::wasm32::unreachable();
            #[cfg(not(target_arch = "wasm32"))]
            {
                println!("wasm only: aborting instead");
                std::process::abort()
            }
        }
        other => {
            println!("unknown mode `{other}`; expected abort, unreachable or panic");
            std::process::exit(2)
        }
    }
}
