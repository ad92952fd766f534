//! Opens `/input/f` again and again, keeping every handle, to exhaust the
//! host's file descriptors. The host must stop it at its handle limit without
//! running out of descriptors itself.
//!
//! Run with: `netmind run target/guests/wasm32-wasip2/release/handle_bomb.wasm --input DIR` (DIR holding a file `f`)

fn main() {
    let mut files = Vec::new();
    for i in 0..1_000_000u32 {
        match std::fs::File::open("/input/f") {
            Ok(f) => files.push(f),
            Err(e) => {
                println!("denied: open #{i}: {e}");
                return;
            }
        }
    }
    println!("LEAK: kept {} open files", files.len());
}
