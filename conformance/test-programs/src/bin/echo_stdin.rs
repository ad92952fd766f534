//! Copies stdin to stdout until end of input.
//!
//! Run with: `echo hi | netmind run target/guests/wasm32-wasip2/release/echo_stdin.wasm`

fn main() {
    let copied = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::stdout().lock());
    if let Err(error) = copied {
        eprintln!("error: copying stdin to stdout: {error}");
        std::process::exit(1);
    }
}
