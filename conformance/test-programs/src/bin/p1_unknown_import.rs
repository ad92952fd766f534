//! A WASI preview 1 core module that imports a function no NetMind host provides,
//! `netmind_evil::open_sesame`, and calls it. The host must refuse to instantiate it; if the call ever
//! returns, it prints `LEAK: ...`. Built for wasm32-wasip1 only.
//!
//! Run with: `netmind run target/guests/wasm32-wasip1/release/p1_unknown_import.wasm`

#[cfg(all(target_arch = "wasm32", target_env = "p1"))]
#[allow(
    unsafe_code,
    reason = "declaring the unknown import is the point of this program"
)]
#[link(wasm_import_module = "netmind_evil")]
unsafe extern "C" {
    fn open_sesame() -> i32;
}

fn main() {
    #[cfg(all(target_arch = "wasm32", target_env = "p1"))]
    {
        println!("calling netmind_evil::open_sesame");
        #[allow(
            unsafe_code,
            reason = "calling the unknown import is the point of this program"
        )]
        // SAFETY: the import takes no arguments and returns an i32; if a host ever links it, the call is
        // exactly what this program means to test.
        let answer = unsafe { open_sesame() };
        println!("LEAK: open_sesame returned {answer}");
    }
    #[cfg(not(all(target_arch = "wasm32", target_env = "p1")))]
    println!("wasip1 only");
}
